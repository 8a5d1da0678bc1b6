"""Command-line overrides are checked against conf/ before Hydra composes: one line per typo, exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CONF, run_cli
from trainer.boundary import parse
from trainer.boundary.overrides import check

MODELS = ", ".join(sorted(p.stem for p in (CONF / "model").glob("*.yaml")))


def lines(args: list[str]) -> list[str]:
    return [p.render() for p in check(parse(args)).problems]


def test_valid_overrides_pass() -> None:
    assert lines(["model=llama", "optimizer.lr=1e-3", "peft=lora", "peft.r=4", "experiment=quick"]) == []
    assert lines(["-m", "optimizer.lr=1e-3,3e-4", "scheduler=cosine,linear", "hydra/launcher=basic"]) == []
    assert lines(["+run.tags.team=nlp", "experiment=null"]) == []


def test_unknown_group_option_with_suggestion() -> None:
    assert lines(["model=lama"]) == [f"  model=lama: unknown option (valid: {MODELS}); did you mean llama?"]
    assert lines(["model=xyz"]) == [f"  model=xyz: unknown option (valid: {MODELS})"]


def test_unknown_key_lists_siblings_and_suggests() -> None:
    assert lines(["optimizer.lrr=1"]) == [
        "  optimizer.lrr=1: unknown key (valid under optimizer: betas, eps, fused, lr, name, weight_decay); "
        "did you mean lr?"
    ]


def test_keys_are_checked_against_the_chosen_group_options() -> None:
    assert lines(["peft=lora", "peft.r=4"]) == []
    (line,) = lines(["peft.r=4"])  # peft=none has no r: say which option has it
    assert line == (
        "  peft.r=4: not an option of the chosen peft; it belongs to peft=dora or peft=lora or peft=qlora; "
        "add peft=dora or peft=lora or peft=qlora"
    )
    (line,) = lines(["peft.rr=4"])
    assert line.startswith("  peft.rr=4: unknown key (valid under peft: method)")


def test_sweeps_check_every_value_and_all_problems_are_listed() -> None:
    assert len(lines(["-m", "model=tiny,lama", "trainer.max_stepz=3,4", "run.nme=x"])) == 3


def test_cli_reports_typos_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    proc = run_cli(["model=lama", "optimizer.lrr=1"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trainer: invalid config (2 problems):" in proc.stderr
    assert f"model=lama: unknown option (valid: {MODELS}); did you mean llama?" in proc.stderr
    assert not (tmp_path / "outputs").exists()
