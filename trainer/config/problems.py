"""Turn validation failures into one line per problem: the dotted key, the value, what is wrong.

Pydantic errors carry a location tuple; cross-field rules (in `rules.py`) name their key directly. Both
end up as `Problem`s so the user sees every mistake at once, in the same shape.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    message: str
    fix: str | None = None

    def render(self) -> str:
        value = "" if self.value is _UNSET else f"={_short(self.value)}"
        line = f"  {self.key or '<root>'}{value}: {self.message}"
        return line + (f"; {self.fix}" if self.fix else "")


_UNSET = object()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


UnionFields = dict[str, dict[str, frozenset[str]]]
"""Top-level tagged-union field -> {tag: the field names of that variant}."""


def from_validation_error(err: ValidationError, unions: UnionFields) -> list[Problem]:
    """`unions`: top-level fields that are tagged unions; pydantic puts the tag in the path
    (parallelism.ddp.devices), which is not a key the user can type, so it is dropped, but it tells
    which variant was chosen when a key belongs to another one."""
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        tag = None
        if len(loc) > 2 and loc[0] in unions:
            tag = loc.pop(1)
        key = ".".join(loc)
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            problems.append(_bad_tag(key, e["ctx"]))
        elif e["type"] == "extra_forbidden":
            problems.append(_unknown_key(key, loc, tag, unions))
        elif e["type"] == "missing":
            problems.append(Problem(key, _UNSET, "required but not set", f"add {key}=<value>"))
        else:
            # A model-level validator's input is the whole section: only a field's own value is shown.
            value = e.get("input", _UNSET)
            problems.append(Problem(key, _UNSET if isinstance(value, dict) else value, message))
    return problems


def _unknown_key(key: str, loc: list[str], tag: str | None, unions: UnionFields) -> Problem:
    """An unknown key, or one that belongs to another option of the same group (a DeepSpeed option
    under parallelism=fsdp): then say which options have it, since that is the likely mistake."""
    if tag is not None and len(loc) == 2:
        owners = [t for t, names in unions[loc[0]].items() if loc[1] in names and t != tag]
        if owners:
            choices = " or ".join(f"{loc[0]}={t}" for t in owners)
            return Problem(
                key, _UNSET, f"is an option of {choices}, not {loc[0]}={tag}", f"remove it, or use {choices}"
            )
    names = sorted(unions[loc[0]][tag]) if tag is not None and len(loc) == 2 else []
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    return Problem(
        key,
        _UNSET,
        "unknown key",
        f"did you mean {close[0]}?" if close else "remove it or check the spelling",
    )


def _bad_tag(key: str, ctx: dict[str, Any]) -> Problem:
    field = ctx["discriminator"].strip("'")
    options = [t.strip().strip("'") for t in ctx["expected_tags"].split(",")]
    close = difflib.get_close_matches(str(ctx["tag"]), options, n=1, cutoff=0.5)
    fix = f"did you mean {close[0]}?" if close else f"use one of: {', '.join(options)}"
    return Problem(f"{key}.{field}", ctx["tag"], f"unknown option (valid: {', '.join(options)})", fix)


def render(problems: list[Problem]) -> str:
    n = len(problems)
    head = f"trainer: invalid config ({n} problem{'s' if n != 1 else ''}):"
    return "\n".join([head, *(p.render() for p in problems)])
