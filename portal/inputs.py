"""Hostile input stops at the edge: a clear 4xx, never a 500 from deeper down.

One place for what every request shares:
- ids in paths fit a 64-bit signed integer (the `int` URL converter is bounded), and
  `int64` does the same for ids in query strings and forms;
- no NUL character in any query, form or JSON string (PostgreSQL text refuses it), no
  lone surrogate in JSON (it cannot be encoded to UTF-8), JSON nested at most
  MAX_JSON_DEPTH deep, numbers within 64 bits;
- MAX_CONTENT_LENGTH holds for chunked bodies too (413, not a silently cut body).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_PAGE = 1_000_000
MAX_JSON_DEPTH = 32


class BadInput(BadRequest):
    """A 400 with a machine-readable code; the API renders it as its JSON error."""

    def __init__(self, code: str, message: str):
        super().__init__(description=message)
        self.error_code = code


def _at_most(limit: str) -> str:
    """A regex of the decimal numbers from 0 to `limit` (no sign, no leading zeros past its length)."""
    alternatives = [f"[0-9]{{1,{len(limit) - 1}}}"]
    for i, digit in enumerate(limit):
        if digit != "0":
            rest = len(limit) - i - 1
            alternatives.append(limit[:i] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(limit)
    return "(?:" + "|".join(alternatives) + ")"


class Int64Converter(IntegerConverter):
    """`<int:id>` that matches only ids a BIGINT column can hold (ASCII digits): others 404.

    The regex itself stops at 2**63-1: an id past it matches no rule, so a POST to a route
    that also has a GET is a 404 like the GET, not a 405."""

    regex = _at_most(str(2**63 - 1))

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, min, INT64_MAX if max is None else max, signed)


def int64(text: str) -> int:
    """For `request.args.get(name, type=int64)`: a non-negative id, or ValueError."""
    if not (isinstance(text, str) and text.isascii() and text.isdigit()) or int(text) > INT64_MAX:
        raise ValueError(f"not an id: {text!r}")
    return int(text)


def page_number(raw: str | None) -> int:
    """A page number from 1 to MAX_PAGE (default 1), or ValueError saying so."""
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise ValueError(f"'page' must be a whole number from 1 to {MAX_PAGE:,}.")
    return int(raw)


def check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise BadInput("nul_character", f"{where} contains a NUL character (\\x00), which is not accepted.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            "invalid_text", f"{where} contains a lone surrogate (such as \\ud800): it is not valid Unicode text."
        ) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The JSON document in `raw`, checked for everything above; BadInput otherwise."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadInput("too_deep", f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.") from None
    except ValueError:
        raise BadInput("malformed_json", "The request body is not valid JSON.") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadInput("too_deep", f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
        if isinstance(item, str):
            check_text(item, "A JSON string")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise BadInput("number_out_of_range", "A number in the JSON body does not fit in 64 bits.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadInput("number_out_of_range", "A number in the JSON body is too large.")
        elif isinstance(item, dict):
            for key, inner in item.items():
                check_text(key, "A JSON key")
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
    return value


_UNSET = object()


def json_body() -> Any:
    """The request's JSON (None when the body is empty), parsed and checked once per request."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # not `g`: an app context may outlive a request
    cached = getattr(req, "_checked_json", _UNSET)
    if cached is _UNSET:
        raw = req.get_data(cache=True)
        cached = parse_json(raw) if raw else None
        req._checked_json = cached
    return cached


# Signed by Stripe and stored escaped: its own view checks the fields it uses.
RAW_BODY_ENDPOINTS = {"payments.webhook"}
# Read only by web.local_path (which refuses control characters itself) and never stored:
# a hostile ?next= on the log-in page falls back to the account page rather than a 400.
UNCHECKED_QUERY_KEYS = {"next"}


def guard_request() -> None:
    """before_request: refuse NUL characters (query, form, path) and bad JSON, for every view."""
    if "\x00" in request.path:
        raise BadInput("nul_character", "The address contains a NUL character (\\x00), which is not accepted.")
    for key, value in request.args.items(multi=True):
        check_text(key, "A query parameter name")
        if key not in UNCHECKED_QUERY_KEYS:
            check_text(value, f"The query parameter {key!r}")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        for key, value in request.form.items(multi=True):
            check_text(key, "A form field name")
            check_text(value, f"The form field {key!r}")
        if request.is_json and request.endpoint not in RAW_BODY_ENDPOINTS:
            json_body()


class _MaxStream(LimitedStream):
    """A streamed (chunked) body: reading one byte past `maximum` is a 413, not a cut-off body."""

    def __init__(self, stream, maximum: int):
        super().__init__(stream, maximum + 1, is_max=True)
        self.maximum = maximum

    def readinto(self, b: Any) -> int | None:
        size = super().readinto(b)
        if self._pos > self.maximum:
            raise RequestEntityTooLarge()
        return size


class BoundedRequest(Request):
    """Werkzeug stops reading a chunked body at MAX_CONTENT_LENGTH without a word, so the
    view sees a truncated body (then "invalid JSON" or a missing CSRF token): 413 instead."""

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if limit is not None and self.content_length is None and self.environ.get("wsgi.input_terminated"):
            return _MaxStream(self.environ["wsgi.input"], limit)
        return get_input_stream(self.environ, max_content_length=limit)
