"""The checkpoint body (c2sp.org/tlog-checkpoint@v1.0.0): the text a log signs.

    example.com/behind-the-sofa\n                      origin
    20852163\n                                         tree size, decimal
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n     root hash, base64
    [extension line\n]...                              optional, non-empty, opaque

Signing and opening a signed checkpoint is a signed note (see `tlogcore.note`).
"""

from dataclasses import dataclass

from tlogcore.encoding import HASH_SIZE, b64encode, parse_decimal, parse_hash_b64
from tlogcore.errors import MalformedError

MAX_CHECKPOINT_NOTE_SIZE = 64 * 1024  # DESIGN.md: reject checkpoint notes over 64 KiB


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedError("checkpoint origin must be one non-empty line")
        if len(self.root) != HASH_SIZE:
            raise MalformedError(f"checkpoint root is {len(self.root)} bytes, want {HASH_SIZE}")
        if any(not line or "\n" in line for line in self.extensions):
            raise MalformedError("checkpoint extension lines must be non-empty single lines")

    @property
    def text(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Strictly parse a checkpoint body (the note text, including its final newline)."""
    if not text.endswith("\n"):
        raise MalformedError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise MalformedError("checkpoint origin is empty")
    if any(not line for line in extensions):
        raise MalformedError("checkpoint extension lines must be non-empty")
    if "\r" in text:
        raise MalformedError("checkpoint lines must end in LF, not CRLF")
    size = parse_decimal(size_text, "checkpoint size")
    root = parse_hash_b64(root_text, "checkpoint root")
    return Checkpoint(origin, size, root, tuple(extensions))
