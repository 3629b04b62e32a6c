"""The verifier page with its trust built in (pure but for reading the shipped assets).

One builder for the page the log serves at /verify and for the static copy `tlog verifier-site` writes for others to
host: the trust policy (C2SP tlog-policy text), the registry keys and the log's identity go into the HTML as a JSON
data block (`<script type="application/json">`, which browsers never execute and the strict CSP allows), so the page
never asks the host it verifies against which keys to trust. Each script and style sheet is pinned by its SHA-384
(Subresource Integrity): a host that swaps the script for another gets a page that does not run.
"""

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tlogcore.logkey import LogKeyRotation

ASSETS = {
    "verify.js": "text/javascript; charset=utf-8",
    "qrlink.js": "text/javascript; charset=utf-8",
    "statusproof.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "verify.css": "text/css; charset=utf-8",
    # Loaded by verify.js only where WebCrypto lacks ML-DSA-44 (web/vendor/README.md: a bundle of @noble/post-quantum).
    "mldsa44.js": "text/javascript; charset=utf-8",
}
SERVICE_WORKER = "sw.js"
# Assets kept outside web/ itself; served and exported under their flat name like the others.
_ASSET_FILES = {"mldsa44.js": "vendor/mldsa44.js"}
LAZY_SCRIPT = "mldsa44.js"
_ASSET_REF = re.compile(r'(src|href)="/verify/([a-z0-9]+\.(?:js|css))"')


def asset(name: str) -> bytes:
    return resources.files("logserver").joinpath("web", *_ASSET_FILES.get(name, name).split("/")).read_bytes()


def integrity(data: bytes) -> str:
    """The Subresource Integrity value of `data` (SHA-384, as the W3C SRI spec recommends)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@dataclass(frozen=True)
class Trust:
    """What the page trusts: a log (by origin and key), its registry keys, and the tlog-policy text (log key,
    witnesses, quorum). `log_url` is where the log answers; "" when the page is served by the log itself."""

    origin: str
    log_vkey: str
    registry_vkeys: tuple[str, ...]
    policy: str
    log_url: str = ""
    # Rotations from trusts pages were built with before to this one, each {"policy", "registry", "note"}: the
    # trust it leads to and the signed note authorising it (tlogcore/trustrotation.py); `tlog trust-rotation`.
    rotations: tuple[dict[str, object], ...] = ()
    # The log's key rotations ({origin, old, new, from, until}; `log_key_ranges`): the page applies the same rule
    # as `tlogcore.logkey.key_rule`, so a checkpoint signed by a key the log replaced is refused.
    log_keys: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "log_vkey": self.log_vkey,
            "registry": list(self.registry_vkeys),
            "policy": self.policy,
            "log_url": self.log_url,
            "rotations": list(self.rotations),
            "log_keys": list(self.log_keys),
        }


def log_key_ranges(rotations: Sequence[LogKeyRotation]) -> tuple[dict[str, str], ...]:
    """Which key signs which sizes, from rotations already proven (logged by this log, or `proven_rotations`).

    Sizes as decimal strings: JSON numbers lose precision above 2^53 in the browser."""
    return tuple(
        {"origin": r.origin, "old": r.old, "new": r.new, "from": str(r.start), "until": str(r.until)} for r in rotations
    )


@dataclass(frozen=True)
class Layout:
    """Where the page finds its assets and service worker: the log's own paths, or one flat folder."""

    assets: str  # prefix of verify.js etc.
    service_worker: str  # the service worker's URL, with the page and asset paths it caches in its query
    scope: str


LOG_LAYOUT = Layout("/verify/", "/verify-sw.js?page=/verify&assets=/verify/", "/verify")
FOLDER_LAYOUT = Layout("./", "./sw.js?page=./&assets=./", "./")


ROTATIONS_DIR = "trust-rotations"  # in the log's data directory: the rotations its own /verify page carries
ROTATION_FIELDS = {"policy": str, "registry": list, "note": str}


def rotation_from_json(data: object) -> dict[str, object] | None:
    """A rotation as `tlog trust-rotation` writes it ({policy, registry, note}), or None when it is not one."""
    if not isinstance(data, dict) or any(not isinstance(data.get(k), t) for k, t in ROTATION_FIELDS.items()):
        return None
    return {k: data[k] for k in ROTATION_FIELDS}


def read_rotations(directory: Path) -> tuple[dict[str, object], ...]:
    """The rotations the log's own /verify page carries: every `*.json` in `directory` (`<data>/trust-rotations/`),
    in name order; read at each page request, so a new one needs no restart. Unreadable files are skipped: the page
    then warns, as for any change it cannot follow (docs/trust.md)."""
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            rotation = rotation_from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if rotation is not None:
            found.append(rotation)
    return tuple(found)


def render_page(trust: Trust, layout: Layout, head_extra: str = "") -> bytes:
    """verify.html with each asset pinned by its hash, the service worker's place, and the trust built in."""
    html = asset("verify.html").decode()
    hashes = {name: integrity(asset(name)) for name in ASSETS}

    def pinned(match: re.Match[str]) -> str:
        attribute, name = match.group(1), match.group(2)
        return f'{attribute}="{layout.assets}{name}" integrity="{hashes[name]}"'

    html = _ASSET_REF.sub(pinned, html)
    # "<" escaped so that no text in the policy can close the data block (HTML spec, script data state).
    data = json.dumps(trust.to_json(), ensure_ascii=False).replace("<", "\\u003c")
    block = f'<script type="application/json" id="tlog-trust">{data}</script>\n'
    html = html.replace("</head>", head_extra + block + "</head>", 1)
    attributes = f'data-sw="{layout.service_worker}" data-sw-scope="{layout.scope}"'
    # The lazily loaded script's place and SRI pin: verify.js adds it with both, so it runs under the same rules.
    attributes += f' data-mldsa44="{layout.assets}{LAZY_SCRIPT}" data-mldsa44-integrity="{hashes[LAZY_SCRIPT]}"'
    html = html.replace('<html lang="en">', f'<html lang="en" {attributes}>', 1)
    return html.encode()
