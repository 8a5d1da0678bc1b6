"""Which dotted keys exist in the schema: the truth for checking command-line overrides early.

A key is valid when the Pydantic models say so, whatever the chosen YAML file happens to spell out: a
data config of one's own that leaves `sequence_len` out still has `data.sequence_len` (its default).
Walking the schema needs three kinds of node besides plain models: tagged unions (`parallelism`, a
dataset's `format`), where the chosen tag picks the variant whose fields are valid; dicts by name
(`data.datasets.<any name>`); and leaves, which take no sub-keys. Like the rest of trainer/config this
imports pydantic and the standard library only.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from trainer.config.train import TrainConfig

TagOf = Callable[[str, str], "str | None"]
"""(dotted path of a tagged union, its tag field) -> the tag chosen there, or None when unknown."""


@dataclass(frozen=True)
class TaggedUnion:
    """A tagged union met on the way to a key: where it is and its variants' fields by tag."""

    path: str
    tag_field: str
    variants: dict[str, frozenset[str]]
    chosen: str | None

    def fields(self) -> frozenset[str]:
        """The chosen variant's keys; every variant's when the tag is not known."""
        if self.chosen in self.variants:
            return self.variants[self.chosen]
        return frozenset().union(*self.variants.values())


@dataclass(frozen=True)
class Lookup:
    """Where a dotted key leads. `found` keys exist; for the others, the deepest node that does exist
    (`parent`), the first part that does not (`leaf`), the keys valid there, and the variants of the
    tagged union at `parent` that do have `leaf` (the likely mistake: an option of another variant)."""

    key: str
    found: bool
    parent: str = ""
    leaf: str = ""
    valid: tuple[str, ...] = ()
    takes_keys: bool = True
    union: TaggedUnion | None = None
    owners: tuple[str, ...] = ()


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """`Annotated[X, meta]` -> (X, [meta]); `X | None` -> X."""
    meta: list[Any] = []
    while get_origin(tp) is Annotated:
        tp, *more = get_args(tp)
        meta.extend(more)
    if get_origin(tp) in (Union, types.UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        if len(members) == 1:
            return _strip(members[0])[0], meta
    return tp, meta


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _union_models(tp: Any) -> list[type[BaseModel]]:
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    members = [_strip(m)[0] for m in get_args(tp) if m is not type(None)]
    return members if members and all(_is_model(m) for m in members) else []


def _discriminator(info: FieldInfo | None, meta: list[Any]) -> str | None:
    for source in (info, *meta):
        found = getattr(source, "discriminator", None)
        if isinstance(found, str):
            return found
    return None


def _tagged(path: str, models: list[type[BaseModel]], tag_field: str, tag_of: TagOf) -> TaggedUnion:
    variants = {str(m.model_fields[tag_field].default): frozenset(m.model_fields) for m in models}
    return TaggedUnion(path, tag_field, variants, tag_of(path, tag_field))


class _Node:
    """One step of the walk: a model, a union of models, a dict by name, or a leaf."""

    def __init__(self, tp: Any, info: FieldInfo | None = None) -> None:
        self.tp, meta = _strip(tp)
        self.models = _union_models(self.tp)
        self.tag_field = _discriminator(info, meta) if self.models else None
        self.by_name = get_origin(self.tp) is dict

    def child(self, path: str, part: str, tag_of: TagOf) -> tuple[_Node | None, TaggedUnion | None]:
        """The node under `part`, and the tagged union `part` was looked up in (if any)."""
        if self.by_name:
            return _Node(get_args(self.tp)[1]), None
        if _is_model(self.tp):
            info = self.tp.model_fields.get(part)
            return (_Node(info.annotation, info) if info else None), None
        if self.models and self.tag_field:
            union = _tagged(path, self.models, self.tag_field, tag_of)
            by_tag = {str(m.model_fields[self.tag_field].default): m for m in self.models}
            order = [by_tag[union.chosen]] if union.chosen in by_tag else list(self.models)
            for model in order:
                info = model.model_fields.get(part)
                if info is not None:
                    return _Node(info.annotation, info), union
            return None, union
        return None, None

    def keys(self, union: TaggedUnion | None) -> tuple[str, ...]:
        if union is not None:
            return tuple(sorted(union.fields()))
        return tuple(sorted(self.tp.model_fields)) if _is_model(self.tp) else ()

    @property
    def takes_keys(self) -> bool:
        return self.by_name or _is_model(self.tp) or bool(self.models)


def lookup(key: str, tag_of: TagOf, root: type[BaseModel] = TrainConfig) -> Lookup:
    """Walk `key` (dotted) down the schema from `root`; tags of unions come from `tag_of`."""
    node = _Node(root)
    parts = key.split(".")
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        child, union = node.child(parent, part, tag_of)
        if child is None:
            owners = ()
            if union is not None:
                owners = tuple(
                    t for t, fields in union.variants.items() if part in fields and t != union.chosen
                )
            return Lookup(key, False, parent, part, node.keys(union), node.takes_keys, union, owners)
        node = child
    return Lookup(key, True)


def union_at(path: str, tag_of: TagOf, root: type[BaseModel] = TrainConfig) -> TaggedUnion | None:
    """The tagged union at dotted `path` (e.g. `data.datasets.x.format`), or None when it is not one."""
    node = _Node(root)
    parts = path.split(".") if path else []
    for i, part in enumerate(parts):
        child, _ = node.child(".".join(parts[:i]), part, tag_of)
        if child is None:
            return None
        node = child
    if node.models and node.tag_field:
        return _tagged(path, node.models, node.tag_field, tag_of)
    return None
