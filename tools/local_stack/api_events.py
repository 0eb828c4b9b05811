"""What API Gateway's HTTP API hands a function and takes back (payload format 2.0).

A request is matched against the routes (most specific first, ``{name}`` and
``{name+}`` path parameters), turned into the event API Gateway would send (``version``
2.0, ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, lower-cased ``headers``
with repeated headers comma-joined, ``queryStringParameters``, ``pathParameters``,
``requestContext.http``, ``body`` with ``isBase64Encoded``; a JWT authorizer's claims
in ``requestContext.authorizer.jwt.claims``, every value a string), and the function's
answer is turned back into HTTP as API Gateway does (``statusCode``/``headers``/
``cookies``/``body``/``isBase64Encoded``, or any other value as a 200 JSON body).
``http_gateway`` serves these over real HTTP.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from .template import ACCOUNT_ID


class Invocable(Protocol):
    @property
    def name(self) -> str: ...

    def invoke(self, event: Any, *, serial: bool = False) -> Any: ...


@dataclass(frozen=True, slots=True)
class GatewayRoute:
    method: str  # GET, POST, ... or ANY
    path: str  # /api/escrow/{id}
    function: Invocable
    authorized: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _compile(self.path))

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self._pattern.fullmatch(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key: literal routes first, then fewer parameters, then greedy last."""
        greedy = int("+}" in self.path)
        return (greedy, self.path.count("{"), -len(self.path.split("/")))


def _compile(path: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            out.append(f"(?P<{part[1:-2]}>.+)")
        elif part.startswith("{") and part.endswith("}"):
            out.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def flatten_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as HTTP APIs hand them over: strings, arrays as ``"[a b]"``.

    >>> flatten_claims({"sub": "u1", "roles": ["admin", "ops"], "exp": 17})
    {'sub': 'u1', 'roles': '[admin ops]', 'exp': '17'}
    """
    out = {}
    for key, value in claims.items():
        if isinstance(value, list | tuple):
            out[key] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, dict):
            out[key] = json.dumps(value, separators=(",", ":"))
        else:
            out[key] = str(value)
    return out


_TEXT_TYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


def _is_text(content_type: str, body: bytes) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not (kind.startswith("text/") or any(t in kind for t in _TEXT_TYPES)):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    route: GatewayRoute,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, Any] | None,
    source_ip: str,
    domain: str,
    api_id: str = "local",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The HTTP API payload-v2 event for one request."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    stamp = time.time() if now is None else now
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id or uuid.uuid4().hex[:16],
        "routeKey": route.route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(stamp)),
        "timeEpoch": int(stamp * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": flatten_claims(claims), "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if _is_text(merged.get("content-type", ""), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def answer_from_result(result: Any) -> HttpAnswer:
    """A function's return value as API Gateway turns it into HTTP (payload format 2.0)."""
    if isinstance(result, Mapping) and "statusCode" in result:
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(str(name), str(v)) for v in values]
        headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw)
        else:
            body = str(raw).encode("utf-8")
        return HttpAnswer(int(result["statusCode"]), headers, body)
    body = json.dumps(result).encode() if not isinstance(result, str) else result.encode()
    return HttpAnswer(200, [("Content-Type", "application/json")], body)
