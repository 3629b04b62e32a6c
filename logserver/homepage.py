"""The log's home page at `/`: what this log is, who issues into it, which witnesses vouch for it, where to verify.

    GET /                  the page (home.html), in Khmer and English
    GET /home/<asset>      its script and style sheet, shipped in logserver/web/

The page is static; its script reads the same-origin JSON the log already serves (/api/v1/log, /api/v1/issuers,
/checkpoint), so the page shows nothing the API does not. It carries the verifier page's strict
Content-Security-Policy (no inline script or style, nothing from another origin).
"""

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logserver.webpage import SECURITY_HEADERS

ASSETS = {
    "home.js": "text/javascript; charset=utf-8",
    "home.css": "text/css; charset=utf-8",
}


def _asset(name: str) -> bytes:
    return resources.files("logserver").joinpath("web", name).read_bytes()


def home_routes() -> list[Route]:
    async def page(request: Request) -> Response:
        return Response(_asset("home.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response(b"not found\n", 404, headers=SECURITY_HEADERS, media_type="text/plain")
        return Response(_asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)

    return [Route("/", page), Route("/home/{name}", asset)]
