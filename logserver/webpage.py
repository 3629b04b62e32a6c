"""The web verifier: a static page at /verify that checks a document's proofs in the browser, and the trust
policy the log publishes for it.

    GET /verify                  the page (verify.html); #h=<hex sha256>&i=<index> online, #b=<base64url> offline
    GET /verify/<asset>          its script, style sheet and translations, shipped in logserver/web/
    GET /verify-sw.js            the service worker (its path puts /verify inside its scope) caching the page
    GET /api/v1/policy           the C2SP tlog-policy text: this log's key, its witnesses, a majority quorum

Every response of the page carries one strict Content-Security-Policy: no inline script or style, nothing from
another origin. The page's scripts are plain JavaScript written for it; no third-party code.
"""

import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {
    "verify.js": "text/javascript; charset=utf-8",
    "qrlink.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "verify.css": "text/css; charset=utf-8",
}
_POLICY_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _asset(name: str) -> bytes:
    return resources.files("logserver").joinpath("web", name).read_bytes()


def policy_text(log_vkey: str, witnesses: Sequence[dict[str, Any]]) -> str:
    """The trust policy this log publishes: its key, each configured witness, a majority of them as quorum."""
    lines = [f"log {log_vkey}"]
    names: list[str] = []
    for position, witness in enumerate(witnesses):
        name = _POLICY_NAME.sub("-", str(witness.get("name") or "")) or f"witness{position}"
        while name in names or name in ("none", "majority"):
            name += f"-{position}"
        names.append(name)
        lines.append(f"witness {name} {witness['vkey']}")
    if names:
        lines.append(f"group majority {len(names) // 2 + 1} {' '.join(names)}")
        lines.append("quorum majority")
    else:
        lines.append("quorum none")
    return "\n".join(lines) + "\n"


def web_routes(log_vkey: str, witness_status: Callable[[], list[dict[str, Any]]]) -> list[Route]:
    async def page(request: Request) -> Response:
        return Response(_asset("verify.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            body = b'{"error": "not_found", "message": "no such file of the verifier page"}'
            return Response(body, 404, headers=SECURITY_HEADERS, media_type="application/json")
        return Response(_asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)

    async def service_worker(request: Request) -> Response:
        return Response(_asset("sw.js"), media_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS)

    async def policy(request: Request) -> Response:
        text = policy_text(log_vkey, witness_status())
        return Response(text, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})

    return [
        Route("/verify", page),
        Route("/verify/{name}", asset),
        Route("/verify-sw.js", service_worker),
        Route("/api/v1/policy", policy),
    ]
