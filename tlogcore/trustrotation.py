"""A trust rotation: the verifier page's pinned trust replaced by a new one, authorised by the old (issue 16).

The page remembers, per site, the trust it was first built with: the tlog-policy text and the registry keys, i.e.
the text of the site's `trust-policy.txt` (`trust_text`). When a later copy of the page carries other trust, it
warns loudly, unless the copy also carries a chain of rotations from the remembered trust to its own, each a
C2SP signed note

    tlog-trust-rotation/v1
    from <SHA-256 hex of the old trust text>
    to <SHA-256 hex of the new trust text>

signed by one of the OLD trust's registry keys (docs/trust.md, "When the trust changes"). Why the registry key:
it is the log operator's most guarded key (it decides who may issue), separate from the log key that signs every
checkpoint and is online; a stolen log key alone cannot move a page's trust to another log. The page twin of
these rules is `authorisedChange` in logserver/web/verify.js.
"""

import hashlib
from collections.abc import Sequence

HEADER = "tlog-trust-rotation/v1"
REGISTRY_LINE = "# registry "


def trust_text(policy: str, registry_vkeys: Sequence[str]) -> str:
    """The trust as one text: the policy, then one `# registry <vkey>` line per registry key (trust-policy.txt)."""
    return policy + "".join(f"{REGISTRY_LINE}{vkey}\n" for vkey in registry_vkeys)


def split_trust_text(text: str) -> tuple[str, list[str]]:
    """A trust-policy.txt back into its policy text and registry keys (the trailing `# registry` lines)."""
    lines = text.splitlines(keepends=True)
    cut = len(lines)
    while cut > 0 and lines[cut - 1].startswith(REGISTRY_LINE):
        cut -= 1
    return "".join(lines[:cut]), [line[len(REGISTRY_LINE) :].strip() for line in lines[cut:]]


def trust_digest(policy: str, registry_vkeys: Sequence[str]) -> str:
    return hashlib.sha256(trust_text(policy, registry_vkeys).encode("utf-8")).hexdigest()


def rotation_text(old_digest: str, new_digest: str) -> str:
    """The text a registry key of the old trust signs to authorise the new one."""
    return f"{HEADER}\nfrom {old_digest}\nto {new_digest}\n"
