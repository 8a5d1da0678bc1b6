"""The layout's promises, checked on the source: one home per concern, and no layer importing one above.

    layer 0  trainer.errors, trainer.config, trainer.assets     (standard library and pydantic only)
    layer 1  trainer.hub, trainer.disk, trainer.console, trainer.launch
    layer 2  trainer.boundary                                   (+ Hydra, OmegaConf)
    layer 3  trainer.data, trainer.models, trainer.objectives
    layer 4  trainer.parallel, trainer.tracking
    layer 5  trainer.training, trainer.inference
    layer 6  trainer.commands, trainer.sweeps
    layer 7  trainer.cli, trainer.__main__

Imports inside functions count as much as those at the top: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "trainer"
LAYERS = {
    "errors": 0,
    "config": 0,
    "assets": 0,
    "hub": 1,
    "disk": 1,
    "console": 1,
    "launch": 1,
    "boundary": 2,
    "data": 3,
    "models": 3,
    "objectives": 3,  # the preference losses: pure torch, called by trainer.training
    "parallel": 4,
    "tracking": 4,
    "training": 5,
    "inference": 5,
    "commands": 6,
    "sweeps": 6,  # a sweep's search, results and report: above the runs its jobs are
    "cli": 7,
    "__main__": 7,
}
HEAVY = {"torch", "lightning", "transformers", "peft", "mlflow", "datasets", "deepspeed", "numpy"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[1]]


def test_every_package_has_a_layer() -> None:
    tops = {_name(p).split(".")[1] for p in _modules() if _name(p) != "trainer"}
    assert tops <= set(LAYERS), tops - set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    name = _name(path)
    if name == "trainer":
        return
    above = [m for m in _imports(path) if m.startswith("trainer.") and _layer(m) > _layer(name)]
    assert not above, f"{name} (layer {_layer(name)}) imports {above}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "config").rglob("*.py")), ids=_name)
def test_config_imports_pydantic_and_the_standard_library_only(path: Path) -> None:
    outside = {
        m
        for m in _imports(path)
        if m.split(".")[0] not in sys.stdlib_module_names
        and m.split(".")[0] != "pydantic"
        and not m.startswith("trainer.config")
    }
    assert not outside, f"{_name(path)} imports {sorted(outside)}"


def test_the_boundary_and_the_hub_load_nothing_heavy() -> None:
    light = [PACKAGE / "hub.py", PACKAGE / "disk.py", PACKAGE / "cli.py"]
    for path in [*(PACKAGE / "boundary").glob("*.py"), *light]:
        heavy = {m for m in _imports(path) if m.split(".")[0] in HEAVY}
        assert not heavy, f"{_name(path)} imports {sorted(heavy)}"


def _code_words(path: Path) -> str:
    """The source without comments and strings (docstrings included)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return " ".join(t.string for t in tokens if t.type not in (tokenize.COMMENT, tokenize.STRING))


def test_the_lightning_module_names_no_strategy() -> None:
    words = _code_words(PACKAGE / "training" / "module.py")
    assert not re.search(r"(?i)deepspeed|fsdp|ddp|modelparallel|strategy", words)


@pytest.mark.parametrize(
    ("needle", "home"),
    [
        ("mlflow", "tracking"),  # one tracker home: everything else talks to trainer.tracking's interface
        ("lightning.pytorch.strategies", "parallel"),  # one home for strategies
        ("hydra", "boundary"),  # nothing past the boundary sees Hydra (the training app is its entry)
    ],
)
def test_one_home_per_concern(needle: str, home: str) -> None:
    allowed = {"boundary": {"boundary", "commands"}}.get(home, {home})
    users = [
        _name(p)
        for p in _modules()
        if any(m == needle or m.startswith(needle + ".") for m in _imports(p))
        and _name(p).split(".")[1] not in allowed
    ]
    assert not users, f"{needle} is imported outside trainer/{home}/: {users}"


def test_no_module_is_much_over_400_lines() -> None:
    long = {_name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long
