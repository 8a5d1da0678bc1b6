"""Hydra hooks (hydra.callbacks, any `_target_`) are refused before Hydra runs anything, unless
TRAINER_ALLOW_HOOKS=1: on the command line and in config folders of one's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CONF, run_cli
from trainer.boundary import parse
from trainer.boundary.hooks import ALLOW_ENV, refuse_hooks
from trainer.errors import UserError

WHY = (
    "Hydra hooks (hydra.callbacks, _target_) run arbitrary code before the config is validated, "
    "so they are refused"
)
FIX = "allow hooks for configs you trust: TRAINER_ALLOW_HOOKS=1 trainer ..."


@pytest.fixture(autouse=True)
def _hooks_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)


def refused(args: list[str]) -> str:
    with pytest.raises(UserError) as err:
        refuse_hooks(parse(args))
    return err.value.render()


@pytest.mark.parametrize(
    "override",
    [
        "+hydra.callbacks.x._target_=os.system",
        "hydra.callbacks.x.command=ls",  # anything under hydra.callbacks
        "+hydra.callbacks={x:{_target_:os.system}}",
        "+hydra={callbacks:{x:{_target_:os.system}}}",
        "+run.tags._target_=os.system",  # a _target_ outside hydra.*
        "+run.tags={a:{_target_:os.system}}",  # ... or inside a value
        "hydra.launcher._target_=os.system",
        "+hydra/callbacks=mine",  # a group of callbacks from a folder of one's own
    ],
)
def test_a_hook_on_the_command_line_is_refused(override: str) -> None:
    assert (
        refused(["model=tiny", override]) == f"trainer: error: {override}: {WHY}\n  fix: remove it, or {FIX}"
    )


def test_every_hook_of_a_command_line_is_named_at_once() -> None:
    args = ["+hydra.callbacks.x._target_=os.makedirs", "+hydra.callbacks.x.name=/tmp/x", "optimizer.lr=1e-3"]
    assert refused(args) == (f"trainer: error: {args[0]}; {args[1]}: {WHY}\n  fix: remove them, or {FIX}")


@pytest.mark.parametrize(
    "args",
    [
        ["model=tiny", "optimizer.lr=1e-3", "+run.tags.target=x", "run.description=no _target_ key"],
        ["-m", "hydra/launcher=basic", "launcher=slurm"],  # Hydra's launcher configs are trusted
        ["~hydra.callbacks"],  # removing hooks runs nothing
        ["--config-dir", str(CONF), "experiment=quick"],  # the project's own conf/ is trusted
    ],
)
def test_plain_command_lines_pass(args: list[str]) -> None:
    refuse_hooks(parse(args))


def test_the_env_variable_allows_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "1")
    refuse_hooks(parse(["+hydra.callbacks.x._target_=os.system"]))
    monkeypatch.setenv(ALLOW_ENV, "yes")  # only 1 allows
    with pytest.raises(UserError):
        refuse_hooks(parse(["+hydra.callbacks.x._target_=os.system"]))


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_hooks_in_a_config_folder_are_refused_with_file_and_key(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    _write(mine, "data/ok.yaml", "datasets: {a: {path: x.json}}\n")  # no hook: not named
    evil = _write(mine, "experiment/evil.yaml", "# @package _global_\nhydra:\n  callbacks:\n    x: {}\n")
    group = _write(mine, "hydra/callbacks/log.yaml", "x:\n  _target_: os.system\n")
    model = _write(mine, "model/odd.yaml", "layers:\n  - _target_: os.system\n")
    (line,) = refused(["--config-dir", str(mine), "model=tiny"]).splitlines()[:1]
    assert line == (
        f"trainer: error: {evil} sets hydra.callbacks; {group} sets hydra.callbacks.x; "
        f"{model} sets model.layers.0._target_: {WHY}"
    )


def test_a_config_path_and_a_searchpath_are_scanned_too(tmp_path: Path) -> None:
    primary = _write(
        tmp_path / "primary", "train.yaml", "hydra:\n  searchpath: [file://" + str(tmp_path / "more") + "]\n"
    )
    more = _write(tmp_path / "more", "x.yaml", "_target_: os.system\n")
    assert primary.exists()
    assert refused(["--config-path", str(tmp_path / "primary")]).startswith(
        f"trainer: error: {more} sets _target_:"
    )
    listed = _write(tmp_path / "listed", "y.yaml", "a: {_target_: os.system}\n")
    line = refused([f"hydra.searchpath=[file://{tmp_path / 'listed'}]"]).splitlines()[0]
    assert line.startswith(f"trainer: error: {listed} sets a._target_:")


def test_the_cli_refuses_a_hook_before_it_runs(tmp_path: Path) -> None:
    target = tmp_path / "made-by-hook"
    args = ["+hydra.callbacks.x._target_=os.makedirs", f"+hydra.callbacks.x.name={target}"]
    proc = run_cli([*args, f"run.output_root={tmp_path / 'out'}"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[:2] == [
        f"trainer: error: {args[0]}; {args[1]}: {WHY}",
        f"  fix: remove them, or {FIX}",
    ]
    assert not target.exists() and not (tmp_path / "out").exists()


def test_the_cli_refuses_a_hook_from_a_config_dir(tmp_path: Path) -> None:
    target = tmp_path / "made-by-hook"
    evil = _write(
        tmp_path / "mine",
        "experiment/evil.yaml",
        "# @package _global_\nhydra:\n  callbacks:\n    x:\n"
        f"      _target_: os.makedirs\n      name: {target}\n",
    )
    proc = run_cli(["--config-dir", str(tmp_path / "mine"), "experiment=evil"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == f"trainer: error: {evil} sets hydra.callbacks: {WHY}"
    assert not target.exists()


def test_with_the_env_variable_the_hook_runs(tmp_path: Path) -> None:
    """Allowed, Hydra runs the hook at the start of the run; a bad value then ends it cheaply."""
    target = tmp_path / "made-by-hook"
    args = ["+hydra.callbacks.x._target_=os.makedirs", f"+hydra.callbacks.x.name={target}"]
    proc = run_cli(
        [*args, "trainer.max_steps=-3", f"run.output_root={tmp_path / 'out'}"],
        cwd=tmp_path,
        **{ALLOW_ENV: "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "trainer.max_steps=-3: Input should be greater than 0" in proc.stderr
    assert target.is_dir()
