"""Is the tracking server there? Asked at start, before anything is prepared (standard library only).

Why: a server that was down at start cost about 6 minutes of MLflow's HTTP retries, then a traceback.
One request to the server's `/health`, a few seconds at most, and a one-line error naming the server
(without its credentials) when nothing answers.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from trainer.config.redact import credentials
from trainer.errors import UserError


def check_server(uri: str | None, key: str = "tracker.uri", timeout: float = 5.0) -> None:
    """Raise a UserError when an http(s) tracking URI has no server answering; other URIs pass."""
    if not uri or not uri.startswith(("http://", "https://")):
        return
    bare, user, password = credentials(uri)
    parts = urlsplit(bare)
    shown = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))  # no query either
    request = urllib.request.Request(shown.rstrip("/") + "/health")
    user = user or os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:  # a recorded URI (password `***`) takes the password from MLflow's variable, as MLflow does
        password = password or os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        pair = f"{user}:{password}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise UserError(
                f"{key}={shown}: the server refuses these credentials (HTTP {err.code})",
                hint="check the user and password in tracker.uri (or MLFLOW_TRACKING_USERNAME/PASSWORD)",
            ) from None
        return  # it answers: an older server without /health, a proxy's page
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise UserError(
            f"{key}={shown}: no tracking server answers ({reason})",
            hint="start it (mlflow server --host 127.0.0.1 --port PORT), fix tracker.uri, "
            "or train without tracking: tracker=none",
        ) from None
