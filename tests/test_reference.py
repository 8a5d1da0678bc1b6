"""The generated configuration reference: up to date, complete, described, and cheap to produce."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from trainer.commands.schema import main
from trainer.config import TrainConfig
from trainer.config.reference import HEADER, json_schema, render_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
SECTIONS = {
    "gc",
    "profiler",
    "run",
    "model",
    "launcher",
    "data",
    "objective",
    "optimizer",
    "scheduler",
    "parallelism",
    "peft",
    "tracker",
    "trainer",
    "hardware",
    "infer",
}
REGENERATE = "trainer schema --write docs/configuration.md"


def _models(annotation: object) -> list[type[BaseModel]]:
    """The models inside an annotation: X, X | None, A | B (tagged unions); Annotated is unwrapped."""
    args = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _all_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, FieldInfo, bool]]:
    """(dotted key, field, is_leaf) for every field below `model`; union options share their parent's key."""
    out = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _models(info.annotation)
        out.append((key, info, not nested))
        for sub in nested:
            out += _all_fields(sub, key + ".")
    return out


def test_docs_are_up_to_date() -> None:
    assert DOC.exists(), f"docs/configuration.md is missing; run `{REGENERATE}`"
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/configuration.md is stale (the config schema changed); run `{REGENERATE}`"
    )


def test_every_field_is_documented_with_a_description() -> None:
    markdown = render_markdown()
    assert HEADER in markdown
    fields = _all_fields(TrainConfig)
    leaves = [key for key, _, leaf in fields if leaf]
    # The walk really reaches nested models and every option of the tagged unions.
    for key in (
        "model.architecture.hidden_size",
        "parallelism.devices",
        "peft.r",
        "tracker.uri",
        "run.sweep.id",
    ):
        assert key in leaves
    missing = [key for key in leaves if f"| `{key}` |" not in markdown]
    assert not missing, f"keys absent from the reference: {missing}"
    undescribed = sorted({key for key, info, _ in fields if not (info.description or "").strip()})
    assert not undescribed, f"fields without Field(description=...): {undescribed}"


def test_markdown_tables_and_types() -> None:
    markdown = render_markdown()
    for section in SECTIONS:
        assert f"## `{section}` <- " in markdown
    assert "## `model` <- `trainer/conf/model/`" in markdown
    assert "## `run` <- keys under `run:` in `trainer/conf/train.yaml`" in markdown
    for option in (
        "parallelism.strategy=ddp",
        "parallelism.strategy=single",
        "peft.method=lora",
        "tracker.kind=none",
    ):
        assert f"### `{option}`" in markdown
    rows = {
        line.split(" | ")[0].strip("| `"): line for line in markdown.splitlines() if line.startswith("| `")
    }
    assert "| `int > 0` | `128` |" in rows["model.architecture.hidden_size"]
    assert "| `0 <= float < 1` | `0.0` |" in rows["data.val_fraction"]
    assert '| `"cosine" \\| "linear" \\| "constant"` | `"cosine"` |' in rows["scheduler.name"]
    assert "| `float > 0 \\| null` | `1.0` |" in rows["trainer.gradient_clip"]
    assert "| `list[str] \\| str` |" in rows["peft.target_modules"]
    assert "| `str` | required |" in rows["data.datasets.<name>.path"]
    assert "| `dict[str, str]` | `{}` |" in rows["run.tags"]
    assert render_markdown() == markdown  # deterministic


def test_json_schema() -> None:
    schema = json.loads(json.dumps(json_schema()))
    assert set(schema["properties"]) == SECTIONS
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == SECTIONS - {
        "hardware",
        "gc",
        "profiler",
        "infer",
        "objective",
    }  # defaults


@pytest.mark.slow
def test_cli_prints_markdown_without_torch(tmp_path: Path) -> None:
    env = {"PYTHONIOENCODING": "utf-8", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "trainer", "schema", "--markdown"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    assert out.stdout == render_markdown()
    probe = (
        "import sys, trainer.commands.schema as s\n"
        "s.main(['--write', sys.argv[1]])\n"
        "heavy = {'torch', 'lightning', 'transformers'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    target = tmp_path / "configuration.md"
    subprocess.run([sys.executable, "-c", probe, str(target)], cwd=ROOT, env=env, check=True)
    assert target.read_text(encoding="utf-8") == render_markdown()


def test_cli_json_in_process(capsys) -> None:
    assert main([]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
