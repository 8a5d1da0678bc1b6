"""`trainer evaluate infer.source=RUN`: score a model on the data, as validation during training does.

Loss, perplexity and teacher-forced exact match on the validation set (`infer.split=train` for the
training mix), computed by the training code (trainer/inference/score.py), so a run's final `val/loss`
is reproduced exactly; any other model folder is scored on the composed data. No optimizer is built and
no run folder created.

Metrics go to the tracker as `eval/loss`, `eval/perplexity`, `eval/exact_match`, `eval/examples`
(`eval_train/...` for infer.split=train): into the run's own MLflow run for a run folder, else into a new
run in the config's experiment; with tracker=none they are only printed.

With `infer.tasks=[...]` it runs lm-evaluation-harness tasks instead (trainer/commands/evaluate_tasks.py):
the built-in tiny_tasks_mc and tiny_tasks_gen, lm-eval's own (hellaswag, arc_easy, ...; their datasets
come from the Hugging Face hub) or tasks of one's own in infer.task_dirs. Needs pip install 'trainer[eval]'.
"""

from __future__ import annotations

from trainer.boundary import Invocation
from trainer.commands.evaluate_tasks import TaskResults, evaluate_tasks
from trainer.commands.usage import run_command
from trainer.console import panel
from trainer.inference.preference_score import PreferenceScores
from trainer.inference.score import Scores
from trainer.inference.source import Source

USAGE = (
    "trainer evaluate infer.source=RUN_OR_MODEL [infer.split=validation|train | infer.tasks=[TASK,...]] "
    "[overrides ...]"
)


def show(
    src: Source, rows: list[tuple[str, str]], metrics: dict[str, float], tracked_run: str | None
) -> None:
    """The panel: the rows, then where the metrics went."""
    keys = ", ".join(metrics)
    tracked = f"{keys} -> run {tracked_run}" if tracked_run else "not logged (tracker=none)"
    rows.append((src.cfg.tracker.kind if tracked_run else "tracking", tracked))
    panel(f"trainer evaluate: {src.label}", rows)


def print_scores(src: Source, scores: Scores, tracked_run: str | None) -> None:
    cfg = src.cfg
    rows = [("loss", f"{scores.loss:.6f}"), ("perplexity", f"{scores.perplexity:.4f}")]
    if scores.exact_match is not None:
        hits = round(scores.exact_match * scores.examples)
        rows.append(
            ("exact match", f"{scores.exact_match:.1%} ({hits:,} of {scores.examples:,}, teacher-forced)")
        )
    rows.append(
        ("scored", f"{scores.examples:,} examples, {scores.tokens:,} trained tokens ({cfg.infer.split})")
    )
    show(src, rows, scores.metrics(cfg.infer.split), tracked_run)


def print_preference_scores(src: Source, scores: PreferenceScores, tracked_run: str | None) -> None:
    cfg = src.cfg
    rows = [(name, f"{value:.6f}") for name, value in scores.values.items()]
    unit = "examples" if cfg.objective.method == "kto" else "pairs"
    rows.append(
        ("scored", f"{scores.examples:,} {unit} ({cfg.infer.split}), objective={cfg.objective.method}")
    )
    show(src, rows, scores.metrics(cfg.infer.split), tracked_run)


def evaluate(inv: Invocation) -> Scores | PreferenceScores | TaskResults:
    if inv.cfg.infer.tasks:
        return evaluate_tasks(inv)
    from trainer.inference.load import load_model, load_tokenizer
    from trainer.inference.score import examples_for, has_answers, numerics, score
    from trainer.inference.source import resolve_source
    from trainer.tracking import for_config

    src = resolve_source(inv)
    cfg = src.cfg
    tokenizer = load_tokenizer(src)
    examples = examples_for(cfg, tokenizer)  # data problems are reported before the model loads
    model = load_model(src, tokenizer)
    batch = cfg.infer.batch_size or cfg.data.eval_batch_size
    tags = {"command": "trainer evaluate", "infer.source": src.label, "infer.split": cfg.infer.split}
    if cfg.objective.method != "sft":
        from trainer.inference.preference_score import score_preferences

        prefs = score_preferences(cfg, model, tokenizer, examples, batch, numerics(cfg, model))
        tracked = for_config(cfg).record_evaluation(prefs.metrics(cfg.infer.split), src.run_dir, tags)
        print_preference_scores(src, prefs, tracked)
        return prefs
    scores = score(model, examples, tokenizer.pad_token_id, batch, numerics(cfg, model))
    if not has_answers(cfg):
        scores = Scores(scores.loss, None, scores.examples, scores.tokens)
    tracked = for_config(cfg).record_evaluation(scores.metrics(cfg.infer.split), src.run_dir, tags)
    print_scores(src, scores, tracked)
    return scores


def main(args: list[str]) -> None:
    run_command("evaluate", __doc__, USAGE, args, evaluate, infer_keys="evaluate")
