"""Shared helpers: compose the real conf/ with Hydra's compose API, and run the CLI in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from trainer.boundary import CONF_DIR, Invocation, from_composed, register_resolvers
from trainer.boundary import compose as compose_command
from trainer.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = CONF_DIR
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests (and the CLI runs they start) cache tokenized data in a folder of their own, not ~/.cache."""
    os.environ["TRAINER_CACHE_DIR"] = str(tmp_path_factory.mktemp("data-cache"))


def compose_dict(overrides: list[str]) -> Any:
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def load_config(
    overrides: list[str] | None = None, run_dir: Path | str = "/tmp/trainer-test-run"
) -> TrainConfig:
    """The same compose -> validate path as the CLI, with the run folder given explicitly."""
    return from_composed(compose_dict([f"run.dir={run_dir}", *(overrides or [])]))


def as_invocation(cfg: TrainConfig) -> Invocation:
    """A config validated in-process (load_config) as a command receives it, with no group choices."""
    return Invocation(cfg, {}, (), Path(cfg.run.dir))


def invocation(args: list[str], command: str = "trainer test") -> Invocation:
    """What a command that does not train gets from the boundary for `args` (its command line)."""
    return compose_command(args, command)


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120", **extra})
    env.pop("TRAINER_DEBUG", None)
    return env


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, module: str = "trainer", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_run(root: Path, name: str, *extra: str) -> subprocess.Popen[str]:
    """The default job as `run.name=name` under `root/outputs`, started in the background, output piped,
    with nothing besides the model written (no checkpoints, no validation at step 0): for module-scoped
    fixtures, where quick_overrides (function-scoped) cannot be used. `extra` sets the steps, data, etc."""
    overrides = [
        f"run.output_root={root / 'outputs'}",
        f"run.name={name}",
        "trainer.val_at_start=false",
        "trainer.checkpoint_every=disable",
        "trainer.save_last=false",
        "trainer.progress_bar=false",
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *overrides],
        cwd=root,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_runs(jobs: dict[str, subprocess.Popen[str]], timeout: float = 600) -> None:
    """Wait for each of `start_run`'s jobs; a failed one fails the fixture with its output's end."""
    for name, job in jobs.items():
        out, _ = job.communicate(timeout=timeout)
        assert job.returncode == 0, f"{name} run failed:\n{out[-3000:]}"


@pytest.fixture
def quick_overrides(tmp_path: Path) -> list[str]:
    """A few steps of the default job, writing under tmp_path, for end-to-end tests."""
    return [
        f"run.output_root={tmp_path / 'outputs'}",
        "trainer.max_steps=12",
        "trainer.val_every=6",
        "trainer.checkpoint_every=6",
        "trainer.progress_bar=false",
        "data.datasets.tiny_tasks.count=600",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """A real `mlflow server` on 127.0.0.1:port with its store in `folder`, answering /health."""
    log = open(folder / "server.log", "a")  # noqa: SIM115 - the server writes to it while it lives
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
               "--artifacts-destination", str(folder / "artifacts")]  # fmt: skip
    # Its own process group: `mlflow server` runs uvicorn in a child, which outlives a signal to it alone.
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc, signal.SIGKILL)
            raise RuntimeError("mlflow server did not start:\n" + (folder / "server.log").read_text()[-2000:])
        time.sleep(0.5)


@pytest.fixture
def mlflow_server(tmp_path: Path):
    port = free_port()
    proc = start_mlflow_server(tmp_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


def stop_server(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """The server and its workers (the whole process group)."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `folder` (size, ro, ...), for full and read-only disks; the test is skipped
    where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
