"""Running lm-evaluation-harness tasks on a loaded model, and its results as rows, metrics and a file.

The model is the one `load_model` gives every inference command (a run's own dtype and kernels, a model
folder, or base + adapter), handed to lm-eval's HFLM as an instance with the tokenizer saved beside it, so
the harness scores exactly what `trainer generate` and `evaluate` see. A PEFT model goes in as it is:
HFLM only calls the model, `generate` and `tie_weights`, which a PeftModel forwards to its base with the
adapter applied, so nothing is merged (a merge would round the weights of a quantized base).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trainer.config import TrainConfig

METRIC_CHARS = re.compile(r"[^A-Za-z0-9_\-./ ]")  # what MLflow accepts in a metric key (and no colons)


# lm-eval's warnings about what this module does on purpose: a model instance and a tokenizer passed in,
# and the shipped tasks' documents built by a function.
EXPECTED = ("`pretrained` model kwarg is not of type", "Passed an already-initialized model", "Custom kwargs")
NOISY_LOGGERS = ("lm_eval.models.huggingface", "lm_eval.api.task")


class _DropExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(EXPECTED)


@contextlib.contextmanager
def quiet_lm_eval() -> Iterator[None]:
    """lm-eval's own log lines, less the warnings this integration makes expected."""
    drop = _DropExpected()
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


@dataclass(frozen=True)
class Row:
    """One metric of one task (or group) as lm-eval reports it: `acc,none` is metric acc, filter none."""

    task: str
    metric: str
    filter: str
    value: float
    stderr: float | None
    n_shot: int | None
    samples: int | None

    @property
    def key(self) -> str:
        """The tracker's name: lm_eval/<task>/<metric>, with /<filter> for a filtered one."""
        name = f"lm_eval/{self.task}/{self.metric}" + ("" if self.filter == "none" else f"/{self.filter}")
        return METRIC_CHARS.sub("_", name)


def max_length(cfg: TrainConfig, model: Any) -> int:
    """The longest prompt lm-eval may build: the model's context window when its config states one,
    else the run's data.sequence_len (what it was trained on)."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return cfg.data.sequence_len


def run_tasks(cfg: TrainConfig, model: Any, tokenizer: Any, tasks: list[Any], manager: Any) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` on the loaded tasks; its results dict, without per-sample records."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    infer = cfg.infer
    batch = infer.batch_size or cfg.data.eval_batch_size
    # A run's export saves max_new_tokens=64 for `trainer generate`; transformers lets it win over the
    # max_length lm-eval computes from each task's max_gen_toks, so the task's own limit would be lost.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(inner, "generation_config", None) is not None:
        inner.generation_config.max_new_tokens = None
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, max_length=max_length(cfg, model))
    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=infer.num_fewshot,
        limit=infer.limit,
        batch_size=batch,
        apply_chat_template=infer.apply_chat_template,
        task_manager=manager,
        log_samples=False,
        random_seed=cfg.run.seed,
        numpy_random_seed=cfg.run.seed,
        torch_random_seed=cfg.run.seed,
        fewshot_random_seed=cfg.run.seed,
    )
    assert results is not None  # None only on ranks other than 0; this is one process
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    """Every metric of every task and group, in lm-eval's order, stderr beside its metric."""
    out = []
    n_shot = results.get("n-shot") or {}
    n_samples = results.get("n-samples") or {}
    for task, values in results["results"].items():
        for key, value in values.items():
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue  # alias, sample counts, and the stderrs read below
            stderr = values.get(f"{metric}_stderr,{filter_name}")
            out.append(
                Row(
                    task=task,
                    metric=metric,
                    filter=filter_name,
                    value=float(value),
                    stderr=float(stderr) if isinstance(stderr, (int, float)) else None,
                    n_shot=n_shot.get(task),
                    samples=(n_samples.get(task) or {}).get("effective"),
                )
            )
    return out


def tracked_metrics(table: list[Row]) -> dict[str, float]:
    """What goes to the tracker: each value, its stderr as <key>_stderr, and each task's sample count."""
    metrics: dict[str, float] = {}
    for row in table:
        metrics[row.key] = row.value
        if row.stderr is not None:
            metrics[f"{row.key}_stderr"] = row.stderr
        if row.samples is not None:
            metrics[METRIC_CHARS.sub("_", f"lm_eval/{row.task}/samples")] = float(row.samples)
    return metrics
