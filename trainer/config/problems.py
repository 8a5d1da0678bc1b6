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
"""Tagged-union key pattern (`parallelism`, `data.datasets.*.format`) -> {tag: that variant's fields}.
A top-level union is a conf/ group chosen as `group=option`; a nested one by its `type` key."""


def _match_union(loc: list[str], unions: UnionFields) -> tuple[str | None, str | None]:
    """Find the union `loc` passes through and pop its tag from `loc` (pydantic puts the tag in the path,
    e.g. parallelism.ddp.devices, which is not a key the user can type)."""
    for pattern in unions:
        parts = pattern.split(".")
        n = len(parts)
        if len(loc) > n + 1 and all(p in ("*", x) for p, x in zip(parts, loc, strict=False)):
            return pattern, loc.pop(n)
    return None, None


def _choice(prefix: str, pattern: str, tag: str) -> str:
    return f"{prefix}={tag}" if "." not in pattern else f"{prefix}.type={tag}"


def from_validation_error(err: ValidationError, unions: UnionFields) -> list[Problem]:
    """`unions`: the tagged unions; their tag is dropped from the key, but it tells which variant was
    chosen when a key belongs to another one."""
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        union, tag = _match_union(loc, unions)
        key = ".".join(loc)
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "union_tag_invalid":
            problems.append(_bad_tag(key, e["ctx"]))
        elif e["type"] == "extra_forbidden":
            problems.append(_unknown_key(key, loc, union, tag, unions))
        elif e["type"] == "missing":
            problems.append(Problem(key, _UNSET, "required but not set", f"add {key}=<value>"))
        else:
            # A model-level validator's input is the whole section: only a field's own value is shown.
            value = e.get("input", _UNSET)
            problems.append(Problem(key, _UNSET if isinstance(value, dict) else value, message))
    return problems


def _unknown_key(
    key: str, loc: list[str], union: str | None, tag: str | None, unions: UnionFields
) -> Problem:
    """An unknown key, or one that belongs to another option of the same group (a DeepSpeed option
    under parallelism=fsdp): then say which options have it, since that is the likely mistake."""
    direct = union is not None and tag is not None and len(loc) == union.count(".") + 2
    names: list[str] = []
    if direct:
        prefix = ".".join(loc[:-1])
        owners = [t for t, fields in unions[union].items() if loc[-1] in fields and t != tag]
        if owners:
            choices = " or ".join(_choice(prefix, union, t) for t in owners)
            chosen = _choice(prefix, union, tag)
            return Problem(
                key, _UNSET, f"is an option of {choices}, not {chosen}", f"remove it, or use {choices}"
            )
        names = sorted(unions[union][tag])
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
