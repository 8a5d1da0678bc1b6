"""Command-line overrides are checked against conf/ before Hydra composes: one line per typo, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_cli_reports_typos_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    proc = run_cli(["model=lama", "optimizer.lrr=1"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trainer: invalid config (2 problems):" in proc.stderr
    assert f"model=lama: unknown option (valid: {MODELS}); did you mean llama?" in proc.stderr
    assert not (tmp_path / "outputs").exists()


# --- the schema walk behind the check (trainer/config/keys.py) --------------------------------------


def _tags(**chosen: str):
    """tag_of for lookup(): the tag chosen at each union path (dots as double underscores)."""
    return lambda path, _field: chosen.get(path.replace(".", "__"))


def test_keys_come_from_the_schema_not_the_yaml() -> None:
    from trainer.config.keys import lookup

    assert lookup("data.sequence_len", _tags()).found
    assert lookup("data.datasets.any_name.format.template", _tags()).found  # dicts take any name
    assert lookup("run.tags.team", _tags()).found and lookup("hardware.packages.flash_attn", _tags()).found
    assert lookup("model.architecture.hidden_size", _tags()).found  # under an optional section


def test_a_key_of_another_variant_names_its_owners() -> None:
    from trainer.config.keys import lookup

    stage = lookup("parallelism.stage", _tags(parallelism="fsdp"))
    assert not stage.found and stage.owners == ("deepspeed",) and stage.union.chosen == "fsdp"
    roles = lookup("data.datasets.x.format.roles", _tags(data__datasets__x__format="alpaca"))
    assert roles.owners == ("chat",) and roles.parent == "data.datasets.x.format"
    typo = lookup("optimizer.lrr", _tags(optimizer="sgd"))
    assert not typo.found and typo.owners == () and "momentum" in typo.valid and "betas" not in typo.valid
    leaf = lookup("optimizer.lr.x", _tags(optimizer="adamw"))
    assert not leaf.found and not leaf.takes_keys and leaf.parent == "optimizer.lr"


def test_omitted_keys_are_passed_to_hydra_as_additions_and_old_variant_keys_dropped() -> None:
    args = ["data.datasets.tiny_tasks.format.type=completion", "peft=lora", "peft.r=4"]
    checked = check(parse(args))
    assert checked.problems == [] and checked.args[:3] == args  # keys the YAML has stay as typed
    dropped = {a for a in checked.args[3:]}
    fmt = "~data.datasets.tiny_tasks.format."
    assert dropped == {fmt + k for k in ("template", "instruction", "input", "output", "system")}
    assert check(parse(["data.datasets.tiny_tasks.format.field=txt"])).problems[0].render() == (
        "  data.datasets.tiny_tasks.format.field=txt: not a key of type=alpaca; it belongs to "
        "type=chat or completion or input_output; set data.datasets.tiny_tasks.format.type=chat "
        "(or completion, input_output)"
    )
