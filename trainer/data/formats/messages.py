"""Chat records -> one message list in the OpenAI shape that chat templates expect, plus the tools.

Both styles end up as {role, content, tool_calls?, tool_call_id?} with `tool_calls` as
[{type: function, function: {name, arguments: dict}}], so every template sees one shape. ShareGPT
`from` values go through the configured role map; a `tool_call` target becomes an assistant message
whose value is the JSON call. Arguments given as JSON text are parsed, since templates render them with
`tojson` and would otherwise show a quoted string.
"""

from __future__ import annotations

import json
from typing import Any

from trainer.config.dataset import ROLES, ChatFormat
from trainer.data.formats.common import FORMAT_HINT, got, where
from trainer.data.sources import json_kind
from trainer.errors import UserError

Message = dict[str, Any]


def _fail(key: str, index: int, detail: str, hint: str = FORMAT_HINT) -> UserError:
    return UserError(f"{where(key, index)}{detail}", hint=hint)


def _content(value: Any, key: str, index: int, j: int) -> str:
    """Text content; null is empty (assistant tool-call turns), a list of text parts is joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    raise _fail(key, index, f", message {j}: content is {json_kind(value)}; expected text")


def _call(raw: Any, key: str, index: int, j: int) -> dict[str, Any]:
    """One tool call in the nested OpenAI shape, arguments as a dict."""
    fn = raw.get("function", raw) if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _fail(key, index, f", message {j}: a tool call needs a name (got {json.dumps(raw)[:120]})")
    args = fn.get("arguments", fn.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as err:
            raise _fail(
                key, index, f", message {j}: tool call arguments are not valid JSON ({err})"
            ) from None
    return {"type": "function", "function": {"name": fn["name"], "arguments": args}}


def _openai(messages: list[Any], key: str, index: int) -> list[Message]:
    out = []
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else None
            raise _fail(
                key,
                index,
                f", message {j}: role {role!r} is not one of {', '.join(ROLES)}",
                hint="OpenAI-style messages need {role, content}; for {from, value} messages set "
                f"{key}.format.style=sharegpt",
            )
        msg: Message = {"role": m["role"], "content": _content(m.get("content"), key, index, j)}
        calls = m.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise _fail(key, index, f", message {j}: tool_calls is {json_kind(calls)}, not a list")
            msg["tool_calls"] = [_call(c, key, index, j) for c in calls]
        for extra in ("tool_call_id", "name"):
            if m.get(extra) is not None:
                msg[extra] = m[extra]
        out.append(msg)
    return out


def _sharegpt(messages: list[Any], role_map: dict[str, str], key: str, index: int) -> list[Message]:
    out = []
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or "from" not in m:
            raise _fail(key, index, f", message {j} has no 'from' key; ShareGPT messages are {{from, value}}")
        source = m["from"]
        target = role_map.get(source) if isinstance(source, str) else None
        if target is None:
            raise _fail(
                key,
                index,
                f", message {j}: ShareGPT role {source!r} is not in role_map (known: {', '.join(role_map)})",
                hint=f"map it, e.g. {key}.format.role_map.{source}=assistant",
            )
        value = m.get("value")
        if target != "tool_call":
            out.append({"role": target, "content": _content(value, key, index, j)})
            continue
        try:
            call = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as err:
            raise _fail(key, index, f", message {j}: a {source!r} value is not JSON ({err})") from None
        calls = call if isinstance(call, list) else [call]
        out.append(
            {"role": "assistant", "content": "", "tool_calls": [_call(c, key, index, j) for c in calls]}
        )
    return out


def parse_tools(record: dict[str, Any], name: str, key: str, index: int) -> list[dict[str, Any]] | None:
    """The tool definitions: a list, or JSON text of one (as ShareGPT files store them); none -> None."""
    value = record.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise _fail(key, index, f": field {name!r} is not valid JSON ({err})") from None
    if value is None:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise _fail(key, index, f": field {name!r} should be a list of tool definitions")
    return value or None


def conversation(
    record: dict[str, Any], fmt: ChatFormat, key: str, index: int
) -> tuple[list[Message], list[dict[str, Any]] | None]:
    """A record's messages, normalized, and its tools (None when it has none)."""
    messages = record.get(fmt.field) if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        found = [k for k in ("messages", "conversations") if isinstance(record, dict) and k in record]
        hint = f"set {key}.format.field={found[0]}" if found else FORMAT_HINT
        what = "empty" if isinstance(messages, list) else got(record, fmt.field)
        raise UserError(f"{where(key, index)} has no message list in field {fmt.field!r} ({what})", hint=hint)
    style = fmt.style
    if style == "auto":
        style = "sharegpt" if isinstance(messages[0], dict) and "from" in messages[0] else "openai"
    if style == "sharegpt":
        msgs = _sharegpt(messages, fmt.role_map, key, index)
    else:
        msgs = _openai(messages, key, index)
    return msgs, parse_tools(record, fmt.tools_field, key, index)
