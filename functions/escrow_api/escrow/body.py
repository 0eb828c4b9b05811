"""Decoding request bodies as a hostile client may send them: media type, depth, number size.

Python's ``json`` module turns some bodies into exceptions that are not decode errors: a
5,000-digit number exceeds the int-string conversion limit (``ValueError``), and arrays
nested 5,000 deep exhaust the stack (``RecursionError``). Both are refused here, before
``json.loads`` and before validation, with a 400 naming ``body`` or the field at fault.

>>> load_json(b'{"amount": 100}')
{'amount': 100}
>>> load_json(b'{"amount": ' + b"9" * 5000 + b"}")
Traceback (most recent call last):
escrow.errors.BadRequestError: amount: the number is too long (over 32 characters) or too large
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import BadRequestError, UnsupportedMediaTypeError

JSON_MEDIA_TYPE = "application/json"
MAX_DEPTH = 16  # the deepest body we accept is 3 (an escrow's party object)
MAX_NUMBER_CHARS = 32  # digits, sign, point and exponent of one number literal

# A JSON string literal (escapes included): brackets inside strings are not structure.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class _Oversized:
    """Stands in for a number literal that is too long, so its field can be named."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def require_json(headers: Mapping[str, str]) -> None:
    """415 unless the Content-Type is ``application/json`` (UTF-8, the only JSON charset).

    Checked before anything else: a form post or ``text/plain`` from a page in a browser
    must not create an escrow, however valid its bytes are as JSON.
    """
    value = headers.get("content-type", "")
    media_type, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, arg = param.partition("=")
        if name.strip().lower() == "charset":
            charset = arg.strip().strip('"').lower()
    if media_type.strip().lower() != JSON_MEDIA_TYPE or charset not in ("", "utf-8", "utf8"):
        shown = media_type.strip() or "none"
        raise UnsupportedMediaTypeError(
            f"the body must be sent as {JSON_MEDIA_TYPE}, not {shown}", field="Content-Type"
        )


def load_json(raw: bytes) -> Any:
    """The decoded body; ``BadRequestError`` for anything ``json.loads`` must not be given."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the body is not valid UTF-8 JSON", field="body") from None
    _check_depth(text)
    try:
        data = json.loads(
            text or "null",
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_no_constant,
        )
    except (json.JSONDecodeError, ValueError):
        raise BadRequestError("the body is not valid JSON", field="body") from None
    path = _oversized_at(data, ())
    if path is not None:
        where = ".".join(path) or "body"
        raise BadRequestError(
            f"{where}: the number is too long (over {MAX_NUMBER_CHARS} characters) or too large",
            field=where,
        )
    return data


def _check_depth(text: str) -> None:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise BadRequestError(
                f"the body is nested deeper than {MAX_DEPTH} levels", field="body"
            )


def _number(kind: type[int] | type[float]) -> Any:
    def parse(literal: str) -> int | float | _Oversized:
        if len(literal) > MAX_NUMBER_CHARS:
            return _Oversized(literal)
        value = kind(literal)
        return value if math.isfinite(value) else _Oversized(literal)  # 1e999 is inf

    return parse


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _oversized_at(node: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where the first oversized number sits (depth is bounded, so recursion is safe)."""
    if isinstance(node, _Oversized):
        return path
    children: Any = ()
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, list):
        children = ((str(i), v) for i, v in enumerate(node))
    for name, child in children:
        found = _oversized_at(child, (*path, str(name)))
        if found is not None:
            return found
    return None
