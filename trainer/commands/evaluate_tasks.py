"""`trainer evaluate infer.source=RUN infer.tasks=[...]`: lm-evaluation-harness tasks instead of the data.

The order is the point: every mistake that needs no model (lm-eval missing, a task folder or task name
wrong, a dataset that cannot be had offline, no chat template) is reported before the model loads. The
results are printed as a table, logged to the tracker as `lm_eval/<task>/<metric>` (into the run's own
MLflow run for a run folder) and written whole as JSON: `<run>/evaluations/lm_eval-<UTC time>.json` for a
run folder; for a model or adapter folder, which is never written into, under
`<run.output_root>/<run.experiment>/evaluations/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainer.boundary import Invocation
from trainer.console import panel, table
from trainer.errors import UserError
from trainer.inference.harness import Row
from trainer.inference.source import Source


@dataclass(frozen=True)
class TaskResults:
    rows: list[Row]
    metrics: dict[str, float]  # what went to the tracker
    file: Path  # the JSON written
    tracked_run: str | None


def evaluate_tasks(inv: Invocation) -> TaskResults:
    from trainer.inference import harness, lm_tasks
    from trainer.inference.load import load_model, load_tokenizer
    from trainer.inference.source import resolve_source
    from trainer.tracking import for_config

    src = resolve_source(inv)
    cfg = src.cfg
    folders = lm_tasks.task_folders(cfg)
    lm_tasks.require_lm_eval(cfg)
    manager = lm_tasks.task_manager(cfg, folders)
    tokenizer = load_tokenizer(src)
    if cfg.infer.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"infer.apply_chat_template=true: the tokenizer of {src.label} has no chat template",
            hint="drop infer.apply_chat_template, or evaluate a model trained with a chat template",
        )
    with harness.quiet_lm_eval():
        tasks = lm_tasks.load_tasks(cfg, manager)  # documents first: a dataset that cannot be had fails here
        model = load_model(src, tokenizer)
        results = harness.run_tasks(cfg, model, tokenizer, tasks, manager)
    rows = harness.rows(results)
    metrics = harness.tracked_metrics(rows)
    tags = {
        "command": "trainer evaluate",
        "infer.source": src.label,
        "infer.tasks": ",".join(cfg.infer.tasks),
    }
    tracked = for_config(cfg).record_evaluation(metrics, src.run_dir, tags)
    file = _write(src, results, tracked)
    _print(src, rows, file, sorted(metrics), tracked)
    return TaskResults(rows, metrics, file, tracked)


def results_file(src: Source, now: datetime) -> Path:
    """Where the JSON goes: the run folder's evaluations/, else the experiment's (never a model folder)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    if src.run_dir is not None:
        return src.run_dir / "evaluations" / f"lm_eval-{stamp}.json"
    cfg = src.cfg
    name = f"lm_eval-{stamp}" + (f"-{src.model_dir.name}" if src.model_dir is not None else "")
    return (
        Path(cfg.run.output_root).expanduser().resolve() / cfg.run.experiment / "evaluations" / f"{name}.json"
    )


def _write(src: Source, results: dict[str, Any], tracked: str | None) -> Path:
    from lm_eval.utils import handle_non_serializable

    now = datetime.now(timezone.utc)
    path = results_file(src, now)
    infer = src.cfg.infer
    ours = {
        "source": src.label,
        "source_kind": src.kind,
        "tasks": infer.tasks,
        "num_fewshot": infer.num_fewshot,
        "limit": infer.limit,
        "task_dirs": infer.task_dirs,
        "apply_chat_template": infer.apply_chat_template,
        "tracked_run": tracked,
        "finished_utc": now.isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"trainer": ours, **results}, indent=2, default=handle_non_serializable)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _print(src: Source, rows: list[Row], file: Path, keys: list[str], tracked: str | None) -> None:
    cells = [
        [
            row.task,
            row.metric if row.filter == "none" else f"{row.metric} ({row.filter})",
            _number(row.value),
            _number(row.stderr),
            "" if row.n_shot is None else str(row.n_shot),
            "" if row.samples is None else str(row.samples),
        ]
        for row in rows
    ]
    table(
        f"trainer evaluate: {src.label}",
        ["task", "metric", "value", "stderr", "n-shot", "samples"],
        cells,
    )
    cfg = src.cfg
    where = f"{len(keys)} metrics lm_eval/... -> run {tracked}" if tracked else "not logged (tracker=none)"
    panel(
        "lm-eval",
        [("results", str(file)), (cfg.tracker.kind if tracked else "tracking", where)],
    )
