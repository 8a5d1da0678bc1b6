"""Hydra's conventions on the `trainer` command line: completion, configs of one's own (--config-dir,
hydra.searchpath), every command's own --help, and a mistyped command told apart from an override."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import cli_env, invocation, run_cli

pytestmark = pytest.mark.slow

TRAINER = str(Path(sys.executable).parent / "trainer")  # the console script: what completion runs


def _trainer(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAINER, *args], cwd=cwd, env=cli_env(**env), capture_output=True, text=True, timeout=300
    )


def _complete(line: str, cwd: Path) -> list[str]:
    proc = _trainer(["-sc", "query=bash"], cwd, COMP_LINE=line, COMP_POINT=str(len(line)))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_shell_completion_installs_and_completes_groups_commands_and_options(tmp_path: Path) -> None:
    script = _trainer(["-sc", "install=bash"], tmp_path)
    assert script.returncode == 0, script.stderr
    assert "hydra_bash_completion" in script.stdout and "complete " in script.stdout
    assert "model=" in _complete("trainer mod", tmp_path)
    assert "model=tiny" in _complete("trainer model=", tmp_path)
    assert "optimizer.lr=" in _complete("trainer optimizer.l", tmp_path)
    assert "plan" in _complete("trainer pl", tmp_path)  # commands, while the first word is typed
    assert "model=" in _complete("trainer plan mod", tmp_path)  # after a command: its overrides


@pytest.fixture
def my_configs(tmp_path: Path) -> Path:
    """A user's config folder, outside the package: an experiment and a data config of their own."""
    folder = tmp_path / "my_configs"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "mine.yaml").write_text(
        textwrap.dedent(
            """\
            # @package _global_
            defaults:
              - override /tracker: none
            run:
              experiment: mine
            optimizer:
              lr: 0.0123
            trainer:
              max_steps: 2
              val_every: 2
              checkpoint_every: disable
              progress_bar: false
            """
        )
    )
    (folder / "data").mkdir()
    # Only what differs from the schema's defaults: sequence_len, chat_template, ... are left out.
    (folder / "data" / "mine.yaml").write_text(
        "datasets:\n  tasks:\n    path: ${asset:data/tiny_tasks/train.json}\n"
        "    format: {type: alpaca, template: alpaca_short}\n    count: 200\nval_count: 20\n"
    )
    return folder


def test_an_experiment_from_a_config_dir_plans_and_trains(my_configs: Path, tmp_path: Path) -> None:
    out = f"run.output_root={tmp_path / 'out'}"
    plan = run_cli(["plan", "--config-dir", str(my_configs), "experiment=mine", out], tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "experiment=mine" in plan.stdout and "lr: 0.0123" in plan.stdout
    proc = run_cli(["--config-dir", str(my_configs), "experiment=mine", out, "run.name=x"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "out" / "mine" / "x" / "model" / "model.safetensors").exists()


def test_typos_are_checked_against_the_config_dir_too(my_configs: Path, tmp_path: Path) -> None:
    proc = run_cli(["plan", "--config-dir", str(my_configs), "experiment=mien"], tmp_path)
    assert proc.returncode == 2 and "did you mean mine?" in proc.stderr, proc.stderr
    assert "valid: fsdp_cpu, llama_lora, mine, packed, quick" in proc.stderr
    searchpath = f"hydra.searchpath=[file://{my_configs}]"
    assert run_cli(["plan", searchpath, "experiment=mine"], tmp_path).returncode == 0


def test_keys_a_data_config_of_ones_own_leaves_out_can_be_set(my_configs: Path) -> None:
    """The schema, not the chosen YAML, says which keys exist: defaults included."""
    inv = invocation(
        ["--config-dir", str(my_configs), "data=mine", "data.sequence_len=96", "data.chat_template=chatml"]
    )
    assert inv.cfg.data.sequence_len == 96 and inv.cfg.data.chat_template == "chatml"
    assert inv.choices["data"] == "mine" and list(inv.cfg.data.datasets) == ["tasks"]


def test_switching_a_format_type_drops_the_old_types_keys() -> None:
    inv = invocation(
        ["data.datasets.tiny_tasks.format.type=completion", "data.datasets.tiny_tasks.format.field=output"]
    )
    fmt = inv.cfg.data.datasets["tiny_tasks"].format
    assert (fmt.type, fmt.field) == ("completion", "output")


def test_every_command_has_its_own_help(tmp_path: Path) -> None:
    top = run_cli(["--help"], tmp_path)
    assert top.returncode == 0 and "Commands" in top.stdout
    assert all(
        f"  {c} " in top.stdout
        for c in ("plan", "preprocess", "generate", "chat", "evaluate", "merge", "schema")
    )
    for command, key in [
        ("plan", None),
        ("generate", "infer.max_new_tokens"),
        ("chat", "infer.temperature"),
        ("evaluate", "infer.split"),
        ("merge", "infer.out"),
        ("preprocess", None),
    ]:
        proc = run_cli([command, "--help"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: trainer {command}"), proc.stdout[:200]
        assert key is None or key in proc.stdout
        assert "model: " not in proc.stdout  # not the training help
    assert run_cli(["schema", "--help"], tmp_path).stdout.startswith("usage: trainer schema")
    assert list(tmp_path.iterdir()) == []


def test_a_mistyped_command_is_named_with_the_closest_one(tmp_path: Path) -> None:
    proc = run_cli(["generat", "infer.prompts=[hi]"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown command 'generat'" in proc.stderr and "did you mean `trainer generate`?" in proc.stderr
    serve = run_cli(["serve"], tmp_path)
    assert serve.returncode == 2 and "unknown command 'serve' (commands: train, plan," in serve.stderr
