"""The configuration reference, generated from the schema itself: Markdown for people, JSON Schema for tools.

The Pydantic models are the single source of truth for every key, its type, default and meaning, so the
reference is rendered from them (`trainer schema --write docs/configuration.md`) rather than
written by hand, and a test fails when docs/configuration.md is stale. Like the rest of trainer/config,
this imports pydantic and the standard library only.
"""

from __future__ import annotations

import inspect
import json
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from trainer.config.train import TrainConfig

HEADER = "Generated from the schema by `trainer schema --markdown`; do not edit by hand."

# Sections that are plain keys of trainer/conf/train.yaml rather than a config group of their own.
_TRAIN_YAML_KEYS = frozenset({"run", "trainer", "hardware", "gc", "profiler", "infer"})

_UNION_ORIGINS = (Union, types.UnionType)
# annotated_types' Gt/Ge/Lt/Le (and Interval) carry their bound in an attribute of the same name.
_LOWER = (("gt", ">"), ("ge", ">="))
_UPPER = (("lt", "<"), ("le", "<="))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the whole validated config (for editors and external tools)."""
    return TrainConfig.model_json_schema()


# --- types -------------------------------------------------------------------------------------------


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _strip_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """`Annotated[int, Gt(0)]` -> (int, [Gt(0)]); anything else -> (tp, [])."""
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        inner, more = _strip_annotated(base)
        return inner, [*more, *meta]
    return tp, []


def _union_members(tp: Any) -> list[Any]:
    tp, _ = _strip_annotated(tp)
    return list(get_args(tp)) if get_origin(tp) in _UNION_ORIGINS else [tp]


def _models_in(tp: Any) -> list[type[BaseModel]]:
    return [m for m in (_strip_annotated(t)[0] for t in _union_members(tp)) if _is_model(m)]


def _bounded(name: str, constraints: list[Any]) -> str:
    """`int` + [Gt(0)] -> `int > 0`; `float` + [Ge(0), Lt(1)] -> `0 <= float < 1`."""
    lower = [(op, b) for c in constraints for attr, op in _LOWER if (b := getattr(c, attr, None)) is not None]
    upper = [(op, b) for c in constraints for attr, op in _UPPER if (b := getattr(c, attr, None)) is not None]
    if lower and upper:
        (lo_op, lo), (hi_op, hi) = lower[0], upper[0]
        flipped = {">": "<", ">=": "<="}[lo_op]
        return f"{_num(lo)} {flipped} {name} {hi_op} {_num(hi)}"
    for op, bound in lower + upper:
        return f"{name} {op} {_num(bound)}"
    return name


def _num(x: Any) -> str:
    return json.dumps(x)


def _type_name(tp: Any, constraints: list[Any] | None = None) -> str:
    """A readable, YAML-flavoured name for an annotation (None is `null`, literals are quoted)."""
    tp, meta = _strip_annotated(tp)
    constraints = [*(constraints or []), *meta]
    origin, args = get_origin(tp), get_args(tp)
    if tp is None or tp is type(None):
        return "null"
    if origin in _UNION_ORIGINS:
        # Field-level constraints (e.g. `float | None = Field(gt=0)`) apply to the non-null members.
        return " | ".join(_type_name(a, [] if a is type(None) else constraints) for a in args)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (list, set, frozenset):
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list[{_type_name(args[0])}]"
        return f"tuple[{', '.join(_type_name(a) for a in args)}]"
    if origin is dict:
        return f"dict[{_type_name(args[0])}, {_type_name(args[1])}]" if args else "dict"
    if _is_model(tp):
        return tp.__name__
    name = getattr(tp, "__name__", None) or str(tp)
    return _bounded(name, constraints)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{json.dumps(value, default=str)}`"


def _tag(option: type[BaseModel], discriminator: str) -> str:
    args = get_args(_strip_annotated(option.model_fields[discriminator].annotation)[0])
    return str(args[0]) if args else option.__name__


def _doc(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else ""


# --- tables ------------------------------------------------------------------------------------------


@dataclass
class _Table:
    title: str
    intro: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)


def _prose(text: str) -> str:
    """Escape `<` outside code spans, so that `outputs/<run>/` is not taken for an HTML tag."""
    parts = text.split("`")
    return "`".join(p if i % 2 else p.replace("<", "\\<") for i, p in enumerate(parts))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _walk(model: type[BaseModel], prefix: str, table: _Table, later: list[_Table]) -> None:
    """Rows for every field of `model` (nested models inline, with dotted keys); tagged unions found
    below a section go to `later`, one table per option."""
    for name, info in model.model_fields.items():
        key = f"{prefix}.{name}"
        table.rows.append(
            (key, _type_name(info.annotation, info.metadata), _default(info), info.description or "")
        )
        models = _models_in(info.annotation)
        inner, _ = _strip_annotated(info.annotation)
        if get_origin(inner) is dict and _is_model(get_args(inner)[1]):  # a map of named entries
            _walk(get_args(inner)[1], f"{key}.<name>", table, later)
        elif len(models) == 1:
            _walk(models[0], key, table, later)
        elif len(models) > 1:
            later.extend(_option_tables(key, info, models))


def _option_tables(key: str, info: FieldInfo, options: list[type[BaseModel]]) -> list[_Table]:
    tag = info.discriminator if isinstance(info.discriminator, str) else None
    tables: list[_Table] = []
    for option in options:
        title = f"`{key}.{tag}={_tag(option, tag)}`" if tag else f"`{key}`: {option.__name__}"
        table = _Table(title, _doc(option))
        nested: list[_Table] = []
        _walk(option, key, table, nested)
        tables += [table, *nested]
    return tables


def _section(name: str, info: FieldInfo) -> tuple[str, list[_Table]]:
    source = (
        f"keys under `{name}:` in `trainer/conf/train.yaml`"
        if name in _TRAIN_YAML_KEYS
        else f"`trainer/conf/{name}/`"
    )
    heading = f"## `{name}` <- {source}"
    models = _models_in(info.annotation)
    intro = info.description or ""
    if len(models) == 1:
        table = _Table("", " ".join(p for p in (intro, _doc(models[0])) if p))
        later: list[_Table] = []
        _walk(models[0], name, table, later)
        return heading, [table, *later]
    tag = info.discriminator if isinstance(info.discriminator, str) else None
    if tag:
        choices = ", ".join(f"`{_tag(m, tag)}`" for m in models)
        intro = f"{intro} A tagged union on `{tag}`: one of {choices}, each with its own keys.".strip()
    return heading, [_Table("", intro), *_option_tables(name, info, models)]


def _render_table(table: _Table) -> list[str]:
    lines = [f"### {table.title}", ""] if table.title else []
    if table.intro:
        lines += [_prose(table.intro), ""]
    if table.rows:
        lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{k}` | `{_cell(t)}` | {_cell(d)} | {_cell(_prose(desc))} |" for k, t, d, desc in table.rows
        ]
        lines.append("")
    return lines


def render_markdown() -> str:
    """The whole reference as Markdown: one section per top-level key of TrainConfig."""
    lines = [
        "# Configuration reference",
        "",
        HEADER,
        "",
        "Every key of a validated run, by section. Set any key on the command line with its dotted name "
        "(`python -m trainer optimizer.lr=1e-3`) and choose a group option with `GROUP=OPTION` "
        "(`python -m trainer peft=lora`). The defaults below are the schema's own, used when a key is "
        "left out; the files in `trainer/conf/` usually set the key explicitly, and their value is what a "
        "run gets. "
        "`required` keys have no schema default and must come from `trainer/conf/` or the command line.",
        "",
        "Types: `int > 0` is a positive integer, `null` is YAML's null (`KEY=null` on the command line), "
        '`"a" | "b"` is one of the quoted values.',
        "",
    ]
    for name, info in TrainConfig.model_fields.items():
        heading, tables = _section(name, info)
        lines += [heading, ""]
        for table in tables:
            lines += _render_table(table)
    return "\n".join(lines).rstrip("\n") + "\n"
