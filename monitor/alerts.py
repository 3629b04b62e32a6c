"""The alert record: which rule matched, on which log, what happened, and the evidence to re-check it.

One JSON object per alert (what every sink receives):

    {"id": "3f1c…", "time": 1790000000, "log": "log.example.gov.kh/documents",
     "rule": "moeys-key", "category": "watch",
     "summary": "entry 20017: issue statement by watched key moeys.gov.kh, document 9f86… not expected",
     "evidence": {"index": 20017, "entry": "<base64>", "inclusion_proof": [...], "checkpoint": "<note>"}}

`category` is `watch` (a watch rule matched), `misbehaviour` (the log broke a
rule any log must keep; the evidence carries checkpoints, proofs, tiles),
`availability` (the log stopped growing or answering) or `test`.

The id is stable: a hash of what makes the alert itself (rule, log and a key
such as the entry's index and leaf hash), never of the time it was made. The
state keeps every id, so an alert found twice (after a restart) is sent once,
and receivers can deduplicate on it too.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

WATCH, MISBEHAVIOUR, AVAILABILITY, TEST = "watch", "misbehaviour", "availability", "test"
CATEGORIES = (WATCH, MISBEHAVIOUR, AVAILABILITY, TEST)

# Rule names of the checks every monitor makes (watch rules are named in the config).
RULE_SIGNATURE = "log-signature"  # a checkpoint whose log signature fails
RULE_ROLLBACK = "log-rollback"  # a checkpoint smaller than one already verified
RULE_FORK = "log-fork"  # two checkpoints, one size, two roots
RULE_CONSISTENCY = "log-consistency"  # a larger checkpoint that does not extend the verified one
RULE_TILES = "log-tiles"  # a tile that does not hash to the checkpoint's root
RULE_BUNDLE = "log-entry-bundle"  # an entry bundle whose entries do not hash to the level-0 tile
RULE_ENTRY = "log-bad-entry"  # an entry the log must have refused (bad signature, inactive key, other log)
RULE_SPLIT_VIEW = "log-split-view"  # the log's checkpoint and a witness's cannot both be true
RULE_STALE = "log-stale"
RULE_UNREACHABLE = "log-unreachable"
RULE_UNVOUCHED = "log-unvouched"  # the witnesses' quorum has not vouched for the newest checkpoint lately (freshness)
RULE_RETIRED_KEY = "log-retired-key"  # a checkpoint signed by a log key the log's rotation retired (logkeys.py)
RULE_TEST = "test-alert"
BUILTIN_RULES = (
    RULE_SIGNATURE,
    RULE_ROLLBACK,
    RULE_FORK,
    RULE_CONSISTENCY,
    RULE_TILES,
    RULE_BUNDLE,
    RULE_ENTRY,
    RULE_SPLIT_VIEW,
    RULE_STALE,
    RULE_UNREACHABLE,
    RULE_UNVOUCHED,
    RULE_RETIRED_KEY,
    RULE_TEST,
)


def alert_id(rule: str, log: str, key: str) -> str:
    """32 hex digits of SHA-256 over what identifies the alert (never its time)."""
    return hashlib.sha256(f"{rule}\n{log}\n{key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Alert:
    rule: str
    category: str
    log: str
    key: str  # what makes this alert unique under (rule, log): e.g. "entry 17 <leaf hash>"
    summary: str
    time: int
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown alert category {self.category!r}")

    @property
    def id(self) -> str:
        return alert_id(self.rule, self.log, self.key)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "log": self.log,
            "rule": self.rule,
            "category": self.category,
            "summary": self.summary,
            "evidence": self.evidence,
        }
