"""A password in tracker.uri connects, and is recorded nowhere: not in the run folder, the console, the
MLflow params, tags or artifacts. Unit tests of the one redaction function, then a run against a real
MLflow server (one without auth accepts basic-auth credentials and ignores them)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import load_config, run_cli
from trainer.config.redact import credentials, redact, redact_logs, redact_tree
from trainer.launch.slurm import render_script


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cr3t@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
        ("https://alice:p%40ss@mlflow.example.com/api", "https://alice:***@mlflow.example.com/api"),
        ("http://alice:p@ss@host:5000/x", "http://alice:***@host:5000/x"),  # an unencoded @ stays hidden
        ("http://alice@host:5000", "http://alice@host:5000"),  # a user name alone is no secret
        ("http://host:5000", "http://host:5000"),
        ("https://h/api?token=abc&run=7&api_key=zz", "https://h/api?token=***&run=7&api_key=***"),
        ("https://h/?Password=x;secret_id=y#top", "https://h/?Password=***;secret_id=***#top"),
        ("sqlite:////tmp/run/mlflow.db", "sqlite:////tmp/run/mlflow.db"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
        ("http://alice:***@host:5000", "http://alice:***@host:5000"),  # already redacted: unchanged
    ],
)
def test_redact_hides_passwords_and_secret_query_values(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_redact_works_on_text_holding_uris() -> None:
    text = "- tracker.uri=http://a:pw@h:1\n- run.name=x\nargv: ['m', 'tracker.uri=http://a:pw@h:1']"
    assert (
        redact(text)
        == "- tracker.uri=http://a:***@h:1\n- run.name=x\nargv: ['m', 'tracker.uri=http://a:***@h:1']"
    )
    tree = {"tracker": {"uri": "http://a:pw@h:1", "kind": "mlflow"}, "argv": ["x", "y=http://a:pw@h"], "n": 3}
    assert redact_tree(tree) == {
        "tracker": {"uri": "http://a:***@h:1", "kind": "mlflow"},
        "argv": ["x", "y=http://a:***@h"],
        "n": 3,
    }


def test_credentials_split_the_password_off_for_the_connection() -> None:
    assert credentials("http://alice:s3cr3t@127.0.0.1:5000/p?x=1") == (
        "http://127.0.0.1:5000/p?x=1",
        "alice",
        "s3cr3t",
    )
    assert credentials("http://alice:p%40ss@h") == ("http://h", "alice", "p@ss")
    assert credentials("http://alice:***@h") == ("http://h", "alice", None)  # a recorded URI: from the env
    assert credentials("sqlite:////tmp/a.db") == ("sqlite:////tmp/a.db", None, None)


def test_log_records_are_redacted_when_made(caplog: pytest.LogCaptureFixture) -> None:
    redact_logs()
    with caplog.at_level(logging.INFO, logger="trainer.test"):
        logging.getLogger("trainer.test").info("connecting to %s", "http://a:pw@h:1")
    assert caplog.messages == ["connecting to http://a:***@h:1"]


def test_a_slurm_job_script_holds_no_password(tmp_path: Path) -> None:
    """The job runs the command line with `***`; its password comes from the environment sbatch passes."""
    uri = "tracker.uri=http://alice:pw@h:5000"
    script = render_script(load_config(["launcher=slurm"]).launcher, [uri], tmp_path / "r1", tmp_path)
    assert "tracker.uri=http://alice:***@h:5000" in script and ":pw@" not in script


PASSWORD = "s3cr3t-pw"


@pytest.mark.slow
def test_a_password_in_tracker_uri_is_used_and_recorded_nowhere(
    tmp_path: Path,
    mlflow_server: str,
    quick_overrides: list[str],
) -> None:
    port = mlflow_server.rpartition(":")[2]
    uri = f"http://alice:{PASSWORD}@127.0.0.1:{port}"
    shown = f"http://alice:***@127.0.0.1:{port}"
    args = [*quick_overrides, "trainer.max_steps=4", "trainer.val_every=2", "trainer.log_every=2"]
    proc = run_cli([*args, "tracker=mlflow", f"tracker.uri={uri}", "run.name=secret"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert PASSWORD not in proc.stdout + proc.stderr
    assert shown in proc.stdout  # the start summary's tracking line, redacted
    run_dir = tmp_path / "outputs" / "default" / "secret"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {".hydra/overrides.yaml", "config.yaml", "provenance.json", "train.log"} <= {
        str(p.relative_to(run_dir)) for p in files
    }
    assert [p for p in files if PASSWORD.encode() in p.read_bytes()] == []
    assert f"uri: {shown}" in (run_dir / "config.yaml").read_text()

    client = MlflowClient(tracking_uri=mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) >= 1  # the connection worked
    assert run.data.params["tracker.uri"] == shown
    recorded = [*run.data.params.values(), *run.data.tags.values()]
    assert [v for v in recorded if PASSWORD in v] == []
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts-back")))
    artifacts = [p for p in downloaded.rglob("*") if p.is_file()]
    assert {"config.yaml", "provenance.json", "train.log"} <= {p.name for p in artifacts}
    assert [p for p in artifacts if PASSWORD.encode() in p.read_bytes()] == []
