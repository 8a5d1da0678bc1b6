"""`trainer report` and the end-of-sweep table, on sweep folders built here from synthetic result.json and
metrics.jsonl files (no training), and one real Optuna study in sqlite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from trainer.commands import report as command
from trainer.sweeps.charts import param_axis
from trainer.sweeps.report import write_report
from trainer.sweeps.results import table
from trainer.training.metrics_history import read_history

LRS = ["0.001", "0.0003", "0.0001", "0.003", "1e-05"]
SCHEDULERS = ["cosine", "linear", "cosine", "constant", "linear"]


def _job(sweep: Path, job: int, params: dict[str, str], status: str, metrics: dict[str, float]) -> Path:
    folder = sweep / str(job)
    folder.mkdir(parents=True)
    label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in params.items())
    record = {"label": label, "params": params, "status": status, "val_loss": metrics.get("val/loss"),
              "metrics": metrics, "error": "boom" if status == "failed" else ""}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(record))
    return folder


def _metrics(folder: Path, rows: list[dict]) -> None:
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _sweep(root: Path, search: dict | None = None, curves: bool = True) -> Path:
    """Five jobs over lr and scheduler: job 2 pruned (the lowest loss, the highest accuracy: never best),
    job 4 failed; job 3 has no metrics.jsonl. Job 1 has the lowest final val loss, job 0 the highest acc."""
    sweep = root / "sweeps" / "20261129-101500"
    losses, accs = [2.0, 1.5, 1.0, 1.8, None], [0.9, 0.6, 0.95, 0.7, None]
    statuses = ["finished", "finished", "pruned", "finished", "failed"]
    for i in range(5):
        metrics = {"train/loss": 2.5} | ({"val/loss": losses[i], "val/acc": accs[i]} if losses[i] else {})
        params = {"optimizer.lr": LRS[i], "scheduler": SCHEDULERS[i]}
        folder = _job(sweep, i, params, statuses[i], metrics)
        if curves and i != 3:
            steps = [{"step": s, "train/loss": 3.0 - s * 0.01 * (i + 1)} for s in range(0, 40, 4)]
            _metrics(folder, [*steps, {"step": 39, "val/loss": losses[i] or 3.0}])
    if search:
        (sweep / "search.json").write_text(json.dumps(search))
    return sweep


def _rows(text: str) -> dict[str, str]:
    """job -> its table line."""
    return {line.split()[-1].rsplit("/", 1)[-1]: line for line in text.splitlines()[1:]}


def test_table_marks_the_lowest_val_loss_by_default(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    text = table(sweep)
    assert text.splitlines()[0] == "sweep 20261129-101500: 5 jobs (val loss, lower is better; * best)"
    rows, width = _rows(text), len("lr=0.003,scheduler=constant")
    assert rows["1"] == f" *   1  {'lr=0.0003,scheduler=linear':<{width}}  finished     1.5000  {sweep / '1'}"
    assert rows["2"].startswith("     2  ") and "  pruned       1.0000  " in rows["2"]  # lower, not final
    assert "  failed          n/a  " in rows["4"]
    assert [job for job, line in rows.items() if line.startswith(" *")] == ["1"]


def test_table_follows_search_json_metric_and_direction(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, {"metric": "val/acc", "direction": "maximize", "storage": "", "study": "s"})
    text = table(sweep)
    assert text.splitlines()[0] == "sweep 20261129-101500: 5 jobs (val/acc, higher is better; * best)"
    rows = _rows(text)
    assert rows["0"].startswith(" *   0  ") and "  finished     0.9000  " in rows["0"]
    assert "  pruned       0.9500  " in rows["2"] and not rows["2"].startswith(" *")
    assert [job for job, line in rows.items() if line.startswith(" *")] == ["0"]
    (sweep / "search.json").write_text(json.dumps({"metric": "val/loss", "direction": "minimize"}))
    assert "(val/loss, lower is better; * best)" in table(sweep)
    assert _rows(table(sweep))["1"].startswith(" *   1  ")


def test_history_takes_the_last_value_of_a_repeated_step(tmp_path: Path) -> None:
    """A resume logs steps again (the last value wins); a line cut short by a kill is skipped."""
    rows = [{"step": 1, "train/loss": 3.0}, {"step": 2, "train/loss": 2.0}, {"step": 2, "train/loss": 2.5},
            {"step": 1, "val/loss": 2.9}]  # fmt: skip
    _metrics(tmp_path, rows)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "train/lo')
    history = read_history(tmp_path)
    assert history["train/loss"] == [(1, 3.0), (2, 2.5)]
    assert history["val/loss"] == [(1, 2.9)]


def test_param_axis() -> None:
    assert param_axis(["0.001", "1e-5", "3e-4"]) == "log"
    assert param_axis(["8", "16", "32"]) == "linear"  # a 4x span: linear reads better
    assert param_axis(["0.0", "0.1", "0.01"]) == "linear"  # zero has no log
    assert param_axis(["cosine", "linear"]) == param_axis(["true", "false"]) == "category"


def _pngs(folder: Path) -> list[Path]:
    import matplotlib.image

    pngs = sorted(folder.glob("*.png"))
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 0
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and image.shape[2] in (3, 4)
    return pngs


def _check_page(sweep: Path, pngs: list[Path]) -> str:
    page = (sweep / "report" / "report.html").read_text()
    assert f"<title>{sweep.resolve()}</title>" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(pngs)
    for job in (sweep / str(i) for i in range(5)):
        assert json.loads((job / "result.json").read_text())["label"] in page
    return page


def test_report_of_a_plain_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _sweep(tmp_path)
    command.main([str(sweep)])
    out = capsys.readouterr().out
    assert table(sweep) in out
    assert "note: no loss curve (no metrics.jsonl or no loss in it) for job(s) 3 (lr=0.003" in out
    pngs = _pngs(sweep / "report")
    names = ["loss_curves.png", "objective_vs_optimizer.lr.png", "objective_vs_scheduler.png"]
    assert [p.name for p in pngs] == sorted(names)
    for path in [*pngs, sweep / "report" / "report.html"]:
        assert f"wrote {path}\n" in out
    assert "optuna-dashboard" not in out  # no study
    page = _check_page(sweep, pngs)
    for value in ("2.0000", "1.5000", "1.0000", "1.8000", "n/a", "boom"):
        assert f"<td>{value}</td>" in page or f'<td class="num">{value}</td>' in page
    assert re.search(r'<tr class=best><td>\*</td><td class="num">1</td>', page)


def test_report_without_any_metrics_file_draws_no_curves(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, curves=False)
    report = write_report(sweep)
    assert not (sweep / "report" / "loss_curves.png").exists()
    assert any("for job(s) 0 (lr=0.001,scheduler=cosine), 1 (" in note for note in report.notes)


def _study(sweep: Path, params: int, trials: int) -> str:
    """A real Optuna study in `<sweep>/optuna.db`, as the search writes it: user_attr job, params named
    by the override keys, intermediate values, one pruned trial."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.create_study(study_name="lr-search", storage=url, direction="maximize")
    space = {"optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
             "scheduler": CategoricalDistribution(["cosine", "linear", "constant"])}  # fmt: skip
    for job in range(trials):
        trial = study.ask(dict(list(space.items())[:params]))
        trial.set_user_attr("job", str(job))
        for step in (10, 20, 30):
            trial.report(0.5 + 0.01 * job * step / 30, step)
        pruned = job == 2
        study.tell(
            trial, None if pruned else 0.5 + 0.01 * job, optuna.trial.TrialState.PRUNED if pruned else None
        )
    (sweep / "search.json").write_text(
        json.dumps({"metric": "val/acc", "direction": "maximize", "storage": url, "study": "lr-search"})
    )
    return url


def test_report_of_an_optuna_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _sweep(tmp_path)
    for job in (5, 6):  # five completed trials: enough for importances
        _job(sweep, job, {"optimizer.lr": "0.002", "scheduler": "cosine"}, "finished", {"val/acc": 0.5})
    url = _study(sweep, params=2, trials=7)
    command.main([str(sweep)])
    out = capsys.readouterr().out
    assert "(val/acc, higher is better; * best)" in out
    pngs = _pngs(sweep / "report")
    optuna_pngs = {"optimization_history.png", "intermediate_values.png", "param_importances.png"}
    assert optuna_pngs <= {p.name for p in pngs}
    page = _check_page(sweep, pngs)
    assert "<th>Optuna trial</th>" in page
    assert "optuna-dashboard " + url in out  # the command, or how to install it first


def test_importances_need_two_params(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    _study(sweep, params=1, trials=5)
    report = write_report(sweep)
    names = {p.name for p in report.written}
    assert {"optimization_history.png", "intermediate_values.png"} <= names
    assert "param_importances.png" not in names
    assert any(
        n.startswith("param_importances.png not drawn: needs >= 2 searched params") for n in report.notes
    )


def _error(tmp_path: Path, *args: str) -> str:
    proc = run_cli(["report", *args], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_report_errors(tmp_path: Path) -> None:
    err = _error(tmp_path, "outputs/default/sweeps/nope")
    assert "trainer: error: outputs/default/sweeps/nope: no such folder" in err
    assert "under outputs/<experiment>/sweeps/<timestamp>/" in err
    (tmp_path / "empty" / "0").mkdir(parents=True)
    err = _error(tmp_path, "empty")
    assert "trainer: error: empty is not a sweep folder (no numbered job folder with a result.json)" in err
    assert "a sweep (`trainer -m KEY=A,B`) writes one numbered folder per job (0/, 1/, ...)" in err
    sweep = _sweep(tmp_path / "outputs" / "default")
    err = _error(tmp_path, "outputs/default/sweeps")  # one level too high: the newest sweep is named
    assert f"fix: the newest sweep in it: trainer report {Path('outputs/default/sweeps') / sweep.name}" in err
    err = _error(tmp_path, str(sweep / "1"))  # one level too low
    assert f"is one job of a sweep\n  fix: trainer report {sweep}\n" in err
    assert "usage: trainer report SWEEP_FOLDER (got: no argument)" in _error(tmp_path)
