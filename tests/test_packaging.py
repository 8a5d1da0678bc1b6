"""A plain, non-editable install: the wheel carries the package with its configs and assets, and the
`trainer` command works from any folder.

The wheel is built from this checkout without build isolation (no download) and installed without
dependencies into a fresh venv, which borrows the test environment's packages through a .pth file (the
project itself is not among them: an editable install's finder is not loaded from there).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the project installed from its wheel; returns the venv's bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and *.egg-info/ beside the sources
    shutil.copytree(ROOT / "trainer", source / "trainer", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root)]
    built = _run([*pip_wheel, str(source)], root)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = root.glob("trainer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "trainer/conf/train.yaml" in names and "trainer/conf/model/tiny.yaml" in names
    assert "trainer/assets/tokenizer/tokenizer.json" in names
    shipped = ["_tiny_tasks.yaml", "tiny_tasks_mc.yaml", "tiny_tasks_gen.yaml", "tiny_tasks.jsonl"]
    shipped.append("tiny_tasks_fewshot.jsonl")  # `trainer evaluate infer.tasks=[tiny_tasks_mc]` reads all 5
    assert {f"trainer/assets/lm_eval_tasks/{name}" for name in shipped} <= set(names)
    prefs = [
        f"trainer/assets/data/{d}/{s}.json"
        for d in ("tiny_prefs", "tiny_kto")
        for s in ("train", "validation")
    ]
    assert {*prefs, "trainer/conf/data/tiny_prefs.yaml", "trainer/conf/data/tiny_kto.yaml"} <= set(names)
    venv = root / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root).returncode == 0
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    done = _run([*pip, "--no-deps", "--no-index", str(wheel)], root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return venv / "bin"


def test_the_installed_package_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import trainer; print(trainer.__file__)"], tmp_path)
    assert where.stdout.strip().startswith(str(installed.parent)), where.stdout + where.stderr


def test_help_lists_commands_and_groups(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "trainer"), "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "plan " in out.stdout and "evaluate " in out.stdout  # the commands
    assert "model: " in out.stdout and "tiny" in out.stdout  # Hydra's groups, from the packaged conf/


def test_a_few_steps_from_another_folder(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = [
        "run.name=wheel",
        f"run.output_root={tmp_path / 'out'}",
        "tracker=none",
        "trainer.max_steps=3",
        "trainer.val_every=3",
        "trainer.checkpoint_every=disable",
        "trainer.progress_bar=false",
        "data.datasets.tiny_tasks.count=200",
    ]
    proc = _run([str(installed / "trainer"), *args], elsewhere)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    model = tmp_path / "out" / "default" / "wheel" / "model"
    assert (model / "model.safetensors").exists() and (model / "tokenizer.json").exists()
    assert list(elsewhere.iterdir()) == []
    # The shipped lm-eval task, its YAML and documents read from the installed package.
    tasks = [f"infer.source={model.parent}", "infer.tasks=[tiny_tasks_mc]", "infer.limit=2"]
    proc = _run([str(installed / "trainer"), "evaluate", *tasks], elsewhere)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tiny_tasks_mc" in proc.stdout and list(elsewhere.iterdir()) == []
