"""Credentials in URLs are never recorded: `http://user:pw@host` is written `http://user:***@host`.

A tracking URI may carry a password (`tracker.uri=http://alice:pw@host:5000`) or a token in its query
(`?token=...`). Everything a run records (config.yaml, provenance.json, Hydra's .hydra/ files, the log
file, MLflow params and tags, the console) goes through `redact`, which works on a single URI or on any
text holding URIs. The connection itself uses the real password: `credentials` splits it off the URI, so
it can be handed to the client out of band (MLflow reads MLFLOW_TRACKING_PASSWORD). Standard library only.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MARK = "***"
_SECRET_KEYS = r"[^=&;\s?#'\"]*(?:token|password|passwd|pwd|secret|key|signature|credential)[^=&;\s?#'\"]*"
# scheme://user:PASSWORD@ : the password runs to the last @ before the path (an unencoded @ stays in it)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)([^/\s'\"]*)(@)")
_QUERY = re.compile(rf"(?i)([?&;]{_SECRET_KEYS}=)([^&;#\s'\"]+)")


def redact(text: str) -> str:
    """`text` with every password in a URL's user info and every secret query value (token, password,
    secret, key, ...) replaced by `***`. Text without such URLs is returned unchanged."""
    if "@" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(rf"\g<1>{MARK}\g<3>", text)
    return _QUERY.sub(rf"\g<1>{MARK}", text)


def redact_tree(data: Any) -> Any:
    """`redact` applied to every string in nested dicts and lists (a config dump, provenance)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: redact_tree(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_tree(v) for v in data]
    return data


def credentials(uri: str) -> tuple[str, str | None, str | None]:
    """(`uri` without user info, user name, password): the password is None when there is none or when
    it is the `***` of a recorded URI (then it has to come from elsewhere, e.g. the environment)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    secret = unquote(password) if has_password and password != MARK else None
    return bare, unquote(user) or None, secret


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: the handler reports it as it would have
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None


_FACTORY: list[Any] = []


def redact_logs() -> None:
    """Every log record, of any logger (Hydra's, Lightning's, MLflow's, ours), is redacted when it is
    made, so no handler (console, train.log) sees a password. Idempotent; survives logging.dictConfig,
    which replaces handlers and filters but not the record factory."""
    if _FACTORY:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    _FACTORY.append(factory)
    logging.setLogRecordFactory(factory)
