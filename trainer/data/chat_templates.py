"""Which chat template renders conversations: the tokenizer's own, or one the project ships.

Why ship templates: many base-model tokenizers (and the built-in tiny one, for tests) have none or a
minimal one, yet chat data must render somehow; `data.chat_template=chatml|llama3` gives a known,
prefix-stable layout with tool support. The text is resolved once and travels in EncodeOptions, so the
data cache key can include it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import UserError

TEMPLATES = Path(__file__).resolve().parents[1] / "assets" / "chat_templates"
SHIPPED: tuple[str, ...] = ("chatml", "llama3")


def shipped_template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def resolve_chat_template(name: str, tokenizer: Any) -> str | None:
    """`auto`: the tokenizer's template (its `default` one when it has several), or None when it has
    none; a shipped name: that file's text."""
    if name == "auto":
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        return template or None
    if name not in SHIPPED:
        raise UserError(
            f"data.chat_template={name}: unknown template",
            hint=f"use auto (the tokenizer's own) or one of {', '.join(SHIPPED)}",
        )
    return shipped_template(name)
