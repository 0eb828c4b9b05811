"""The operator console: a static page, its script and its style, shipped with the
processor function (no CDN: nothing is fetched from outside at run time).

The page holds no data and no secret: it asks for the operator token and the operator's
name, keeps them in the tab's ``sessionStorage``, and calls the operator API with
``Authorization: Bearer``. The Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aws_lambda_powertools.event_handler import Response

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text("utf-8")


def asset_response(name: str) -> Response[str]:
    content_type = ASSETS.get(name)
    if content_type is None:
        return Response(404, "application/json", '{"error": "no such console file"}')
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return Response(200, content_type, asset(name), headers)
