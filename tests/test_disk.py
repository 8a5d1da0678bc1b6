"""Folders a run writes into are probed first (trainer/disk.py): the run and sweep folders before Hydra
makes them, the data cache before tokenizing. Impossible paths (under a regular file) work as root; a
read-only file system is a tmpfs mounted read-only, skipped where mounting is not allowed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import load_config, run_cli, tmpfs
from trainer.data import cache
from trainer.data.prepare import prepare_data
from trainer.disk import probe, require_run_folder
from trainer.errors import UserError
from trainer.models.build import load_tokenizer

RUN_FIX = "  fix: point run.output_root at a folder you can write (run.output_root=DIR)"
CACHE_FIX = "point data.cache_dir at a folder you can write, or set data.cache=false"
DEBUG_LINE = "  (set TRAINER_DEBUG=1 to see the traceback)"


@pytest.fixture
def under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("a regular file")
    return tmp_path / "file" / "out"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs, mounted read-only at a fresh folder."""
    with tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        yield folder


def test_probe_says_what_failed_and_why(tmp_path: Path, under_a_file: Path) -> None:
    assert probe(under_a_file) == ("cannot create", "Not a directory")
    assert probe(tmp_path / "a" / "b") is None and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone


def test_probe_of_a_read_only_folder(read_only: Path) -> None:
    assert probe(read_only) == ("cannot write in", "Read-only file system")
    assert probe(read_only / "sub") == ("cannot create", "Read-only file system")


def test_run_folder_is_named_by_the_key_that_placed_it(tmp_path: Path, under_a_file: Path) -> None:
    with pytest.raises(UserError) as info:
        require_run_folder(under_a_file / "default" / "r", str(under_a_file))
    assert info.value.message == (
        f"run.output_root={under_a_file}: cannot create the run folder {under_a_file}/default/r "
        "(Not a directory)"
    )
    with pytest.raises(UserError) as info:  # hydra.run.dir set apart from run.output_root
        require_run_folder(under_a_file, str(tmp_path / "outputs"))
    assert (
        info.value.message
        == f"hydra.run.dir={under_a_file}: cannot create the run folder {under_a_file} (Not a directory)"
    )
    assert (
        info.value.hint
        == "point hydra.run.dir at a folder you can write, or leave it to follow run.output_root"
    )


def test_unwritable_output_root_is_one_line_before_hydra_makes_the_folder(
    tmp_path: Path, under_a_file
) -> None:
    run = run_cli(
        [f"run.output_root={under_a_file}", "run.name=r", "tracker=none"], cwd=tmp_path, timeout=120
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"trainer: error: run.output_root={under_a_file}: cannot create the run folder "
        f"{under_a_file}/default/r (Not a directory)",
        RUN_FIX,
        DEBUG_LINE,
    ]
    sweep = run_cli(["-m", f"run.output_root={under_a_file}", "run.seed=1,2"], cwd=tmp_path, timeout=120)
    assert sweep.returncode == 2, sweep.stderr
    first = sweep.stderr.splitlines()[0]
    assert first.startswith(
        f"trainer: error: run.output_root={under_a_file}: cannot create the sweep folder "
        f"{under_a_file}/default/sweeps/"
    ) and first.endswith(" (Not a directory)")
    assert "Traceback" not in sweep.stderr


def test_read_only_output_root(tmp_path: Path, read_only: Path) -> None:
    run = run_cli([f"run.output_root={read_only}", "run.name=r", "tracker=none"], cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[:2] == [
        f"trainer: error: run.output_root={read_only}: cannot create the run folder "
        f"{read_only}/default/r (Read-only file system)",
        RUN_FIX,
    ]


def test_unwritable_cache_is_found_before_tokenizing(monkeypatch, under_a_file: Path) -> None:
    cfg = load_config([f"data.cache_dir={under_a_file}"])
    monkeypatch.setattr("trainer.data.prepare._build", lambda *a: pytest.fail("tokenized first"))
    with pytest.raises(UserError) as info:
        prepare_data(cfg.data, load_tokenizer(cfg.model), cfg.run.seed)
    assert info.value.message == (
        f"data.cache_dir={under_a_file}: cannot create the data cache folder {under_a_file} (Not a directory)"
    )
    assert info.value.hint == CACHE_FIX


def test_cache_from_the_environment_is_named_so(monkeypatch, under_a_file: Path) -> None:
    monkeypatch.setenv(cache.ENV_DIR, str(under_a_file))
    with pytest.raises(UserError) as info:
        cache.require_writable(None)
    assert info.value.message == (
        f"data.cache_dir=null ($TRAINER_CACHE_DIR): cannot create the data cache folder {under_a_file} "
        "(Not a directory)"
    )


def test_read_only_cache_is_refused_on_a_miss_and_read_on_a_hit(tmp_path: Path) -> None:
    """A cache prepared elsewhere (trainer preprocess) may be read-only: only writing it needs the probe."""
    folder = tmp_path / "cache"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        cfg = load_config([f"data.cache_dir={folder}", "data.datasets.tiny_tasks.count=200"])
        tok = load_tokenizer(cfg.model)
        assert prepare_data(cfg.data, tok, cfg.run.seed).summary.cache.startswith("built ")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        assert prepare_data(cfg.data, tok, cfg.run.seed).summary.cache.startswith("hit ")
        with pytest.raises(UserError) as info:  # another seed: another key, a miss
            prepare_data(cfg.data, tok, cfg.run.seed + 1)
        assert info.value.message == (
            f"data.cache_dir={folder}: cannot write in the data cache folder {folder} (Read-only file system)"
        )
    finally:
        subprocess.run(["umount", str(folder)], check=True)
