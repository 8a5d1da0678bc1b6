"""`trainer evaluate infer.source=RUN`: score a model on the data, as validation during training does.

The data is prepared by the same code as for training (same split, seed and cache), batches are padded by
the training `Collator`, and the numbers are the module's own: the token-weighted loss (`token_loss`) and
teacher-forced exact match (`exact_matches`: the share of examples greedy decoding answers word for word).
So a run's final `val/loss` is reproduced exactly, and the same command scores any other model folder on
the composed data. Perplexity is exp(loss). Exact match is left out for raw-text (completion) data, which
has no single right answer. No optimizer is built and no run folder created.

Metrics go to MLflow as `eval/loss`, `eval/perplexity`, `eval/exact_match`, `eval/examples`
(`eval_train/...` for infer.split=train): into the run's own MLflow run for a run folder, else into a new
run in the config's experiment; with tracker=none they are only printed.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.config import TrainConfig
from trainer.config.dataset import CompletionFormat
from trainer.errors import UserError, first_line
from trainer.quiet_entry import quiet_main


@dataclass(frozen=True)
class Scores:
    loss: float
    exact_match: float | None
    examples: int
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.loss < 700 else math.inf

    def metrics(self, split: str) -> dict[str, float]:
        prefix = "eval" if split == "validation" else "eval_train"
        out = {"loss": self.loss, "perplexity": self.perplexity, "examples": float(self.examples)}
        if self.exact_match is not None:
            out["exact_match"] = self.exact_match
        return {f"{prefix}/{k}": v for k, v in out.items()}


def examples_for(cfg: TrainConfig, tokenizer: Any) -> Sequence[dict[str, Any]]:
    """The split's examples, prepared exactly as for training (packed rows are scored unpacked)."""
    from trainer.data.prepare import prepare_data

    data = prepare_data(cfg.data, tokenizer, cfg.data.seed_or(cfg.run.seed))
    if cfg.infer.split == "train":
        chosen = getattr(data.train, "examples", data.train)
    elif len(data.val):
        chosen = data.val
    else:
        raise UserError(
            "infer.split=validation: the data has no validation set",
            hint="use infer.split=train, or give the data one (data.validation, data.val_fraction or "
            "data.val_count) with a model folder as infer.source",
        )
    n = min(len(chosen), cfg.infer.max_examples or len(chosen))
    return [chosen[i] for i in range(n)]


def _has_answers(cfg: TrainConfig) -> bool:
    """Exact match means something unless every scored dataset is raw text."""
    d = cfg.data
    scored = d.datasets if cfg.infer.split == "train" or not d.validation else d.validation
    return not all(isinstance(ds.format, CompletionFormat) for ds in scored.values())


def _precision(cfg: TrainConfig, model: Any) -> Any:
    """Training's numerics on a GPU (autocast for *-mixed, bf16 weights for bf16-true); fp32 on a CPU."""
    import torch

    precision = cfg.precision
    if model.device.type != "cuda" or precision == "32":
        return contextlib.nullcontext()
    if precision == "bf16-true":
        model.to(torch.bfloat16)
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def score(
    model: Any, examples: Sequence[dict[str, Any]], pad_id: int, batch_size: int, numerics: Any
) -> Scores:
    """Sum of token losses over all batches / trained tokens, as the module's weighted MeanMetric does."""
    import torch

    from trainer.data.datamodule import Collator
    from trainer.models.module import exact_matches, token_loss

    collate = Collator(pad_id)
    total, tokens, matches = 0.0, 0, []
    with torch.no_grad(), numerics:
        for start in range(0, len(examples), batch_size):
            batch = {
                k: v.to(model.device) for k, v in collate(list(examples[start : start + batch_size])).items()
            }
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
            ).logits
            loss_sum, count = token_loss(logits, batch["labels"])
            total += float(loss_sum)
            tokens += int(count)
            matches.append(exact_matches(logits, batch["labels"]).cpu())
    if tokens == 0:
        raise UserError("no trained tokens in the scored examples", hint="check the data's labels")
    hits = torch.cat(matches)
    return Scores(total / tokens, float(hits.mean()) if len(hits) else None, len(examples), tokens)


# --- MLflow ------------------------------------------------------------------------------------------


def _last_step(client: Any, run_id: str) -> int:
    """The run's final training step, so the evaluation lines up with its curves."""
    for key in ("val/loss", "train/loss"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        if steps:
            return max(steps)
    return 0


def _log(client: Any, run_id: str, metrics: dict[str, float], step: int) -> None:
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=step)


def log_to_mlflow(src: Any, metrics: dict[str, float]) -> str | None:
    """Into the run's MLflow run when the run folder has one, else a new run; None with tracker=none."""
    from pathlib import Path

    from trainer.config.tracker import MlflowTracker
    from trainer.tracking import mlflow as tracking

    cfg = src.cfg
    if not isinstance(cfg.tracker, MlflowTracker):
        return None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking.tracking_uri(cfg, cfg.tracker)
    run_id = tracking.previous_run_id(src.run_dir) if src.run_dir is not None else None
    if run_id and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"the run's MLflow store {uri} does not exist (the run folder was moved?)",
            hint="set tracker.uri in the run's config.yaml to where mlflow.db is now",
        )
    client = MlflowClient(tracking_uri=uri)
    try:
        if run_id:
            _log(client, run_id, metrics, _last_step(client, run_id))
        else:
            name = cfg.tracker.experiment or cfg.run.experiment
            found = client.get_experiment_by_name(name)
            artifacts = tracking.artifact_root(cfg) if not cfg.tracker.uri else None
            exp_id = found.experiment_id if found else client.create_experiment(name, artifacts)
            tags = {"command": "trainer evaluate", "infer.source": src.label, "infer.split": cfg.infer.split}
            run_id = client.create_run(exp_id, run_name=f"evaluate-{cfg.run.name}", tags=tags).info.run_id
            _log(client, run_id, metrics, 0)
            client.set_terminated(run_id)
    except MlflowException as err:
        first = first_line(err)
        raise UserError(
            f"MLflow at {uri}: {first}", hint="check tracker.uri and the run's mlflow_run_id"
        ) from None
    return f"{run_id} in {uri}"


# --- entry -------------------------------------------------------------------------------------------


def print_scores(src: Any, scores: Scores, mlflow_run: str | None) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    cfg = src.cfg
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_row("loss", f"{scores.loss:.6f}")
    grid.add_row("perplexity", f"{scores.perplexity:.4f}")
    if scores.exact_match is not None:
        hits = round(scores.exact_match * scores.examples)
        grid.add_row(
            "exact match", f"{scores.exact_match:.1%} ({hits:,} of {scores.examples:,}, teacher-forced)"
        )
    grid.add_row(
        "scored", f"{scores.examples:,} examples, {scores.tokens:,} trained tokens ({cfg.infer.split})"
    )
    keys = ", ".join(scores.metrics(cfg.infer.split))
    grid.add_row("mlflow", f"{keys} -> run {mlflow_run}" if mlflow_run else "not logged (tracker=none)")
    title = f"trainer evaluate: {src.label}"
    Console(soft_wrap=False, highlight=False).print(
        Panel(grid, title=title, title_align="left", expand=False)
    )


def evaluate(cfg: TrainConfig, args: list[str]) -> Scores:
    from trainer.inference import load_model, load_tokenizer, resolve_source

    # The collator reads the cache's read-only arrays without copying; nothing writes to those tensors.
    warnings.filterwarnings("ignore", message=".*NumPy array is not writable.*")
    src = resolve_source(cfg, args)
    cfg = src.cfg
    tokenizer = load_tokenizer(src)
    examples = examples_for(cfg, tokenizer)  # data problems are reported before the model loads
    model = load_model(src, tokenizer)
    batch = cfg.infer.batch_size or cfg.data.eval_batch_size
    scores = score(model, examples, tokenizer.pad_token_id, batch, _precision(cfg, model))
    if not _has_answers(cfg):
        scores = Scores(scores.loss, None, scores.examples, scores.tokens)
    print_scores(src, scores, log_to_mlflow(src, scores.metrics(cfg.infer.split)))
    return scores


def main() -> None:
    args = sys.argv[1:]
    quiet_main(lambda cfg, _choices: evaluate(cfg, args), "trainer evaluate", args)


if __name__ == "__main__":
    main()
