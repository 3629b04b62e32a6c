"""The web verifier: a page at /verify that checks a document's proofs in the browser, with this log's trust policy
and registry keys built into its HTML (logserver/verifierpage.py: never fetched at verification time), and the
trust policy the log publishes for tools.

    GET /verify                  the page (verify.html); #h=<hex sha256>&i=<index> online, #b=<base64url> offline
    GET /verify/<asset>          its script, style sheet and translations, shipped in logserver/web/
    GET /verify-sw.js            the service worker (its path puts /verify inside its scope) caching the page
    GET /api/v1/policy           the C2SP tlog-policy text: this log's key, its witnesses, a majority quorum

Every response of the page carries one strict Content-Security-Policy: no inline script or style, nothing from
another origin. The page's scripts are plain JavaScript written for it, but for one vendored bundle (ML-DSA-44 from
@noble/post-quantum, logserver/web/vendor/README.md) loaded only where WebCrypto lacks it. The log's public reads
(checkpoint, bundles, document lookups, tiles) allow any origin (`PublicReads`), so a copy of the page hosted on
another site can ask this log; they are public data, and the page trusts none of it without proof.
"""

import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logserver import verifierpage
from logserver.verifierpage import ASSETS, LOG_LAYOUT, SERVICE_WORKER, Trust, log_key_ranges, render_page
from tlogcore.logkey import LogKeyRotation

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
_POLICY_NAME = re.compile(r"[^A-Za-z0-9._-]")
_PUBLIC_READS = (
    "/checkpoint",
    "/tile/",
    "/api/v1/bundle/",
    "/api/v1/documents/",
    "/api/v1/log",
    "/api/v1/issuers",
    "/api/v1/proof/",  # refresh on a page hosted elsewhere: consistency and inclusion proofs
)


def policy_text(log_vkey: str | Sequence[str], witnesses: Sequence[dict[str, Any]]) -> str:
    """The trust policy this log publishes: its key (a rotated log: every key, first to newest, docs/thirty-years.md
    "Log key rotation"), each configured witness, a majority of them as quorum.

    A witness with several keys (Ed25519 and ML-DSA-44, `vkeys`) is one member of the majority: each key is a
    policy witness of its own, and a group `<name>-any` is satisfied by any of them, so it is never counted twice.
    A verifier that requires post-quantum witnesses writes its own policy (docs/thirty-years.md)."""
    lines = [f"log {vkey}" for vkey in ([log_vkey] if isinstance(log_vkey, str) else log_vkey)]
    taken: set[str] = {"none", "majority"}
    members: list[str] = []

    def fresh(name: str, position: int) -> str:
        while name in taken:
            name += f"-{position}"
        taken.add(name)
        return name

    for position, witness in enumerate(witnesses):
        name = fresh(_POLICY_NAME.sub("-", str(witness.get("name") or "")) or f"witness{position}", position)
        vkeys = list(witness.get("vkeys") or [witness["vkey"]])
        keys = [name] + [fresh(f"{name}-key{n + 2}", position) for n in range(len(vkeys) - 1)]
        lines += [f"witness {key_name} {vkey}" for key_name, vkey in zip(keys, vkeys, strict=True)]
        if len(keys) > 1:
            group = fresh(f"{name}-any", position)
            lines.append(f"group {group} any {' '.join(keys)}")
            keys = [group]
        members.append(keys[0])
    if members:
        lines.append(f"group majority {len(members) // 2 + 1} {' '.join(members)}")
        lines.append("quorum majority")
    else:
        lines.append("quorum none")
    return "\n".join(lines) + "\n"


def web_routes(
    log_vkeys: Callable[[], Sequence[str]],
    witness_status: Callable[[], list[dict[str, Any]]],
    origin: str,
    registry_vkeys: Sequence[str],
    rotations: Callable[[], tuple[dict[str, object], ...]] = tuple,
    log_key_rotations: Callable[[], Sequence[LogKeyRotation]] = tuple,
) -> list[Route]:
    """`log_vkeys`: the log's keys as the log announced them so far, the first one first (logkeys.py);
    `log_key_rotations`: the announcements themselves, which the page applies (docs/thirty-years.md)."""

    async def page(request: Request) -> Response:
        keys = log_vkeys()
        policy = policy_text(keys, witness_status())
        ranges = log_key_ranges(log_key_rotations())
        trust = Trust(origin, keys[-1], tuple(registry_vkeys), policy, rotations=rotations(), log_keys=ranges)
        body = render_page(trust, LOG_LAYOUT)
        return Response(body, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def page_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            body = b'{"error": "not_found", "message": "no such file of the verifier page"}'
            return Response(body, 404, headers=SECURITY_HEADERS, media_type="application/json")
        return Response(verifierpage.asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)

    async def service_worker(request: Request) -> Response:
        return Response(
            verifierpage.asset(SERVICE_WORKER), media_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS
        )

    async def policy(request: Request) -> Response:
        text = policy_text(log_vkeys(), witness_status())
        return Response(text, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})

    return [
        Route("/verify", page),
        Route("/verify/{name}", page_asset),
        Route("/verify-sw.js", service_worker),
        Route("/api/v1/policy", policy),
    ]


class PublicReads:
    """ASGI middleware: the log's public GET reads may be fetched from any origin (CORS), for verifier pages hosted
    on other sites (`tlog verifier-site`). No credentials are involved; writes are not opened."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "GET" or not path.startswith(_PUBLIC_READS):
            await self.app(scope, receive, send)
            return

        async def send_open(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"access-control-allow-origin", b"*"))
            await send(message)

        await self.app(scope, receive, send_open)
