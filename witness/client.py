"""An async client of a witness (c2sp.org/tlog-witness@v1.0.0), for the log server and monitors.

    async with WitnessClient("http://127.0.0.1:7380", timeout=5.0) as witness:
        try:
            lines = await witness.add_checkpoint(old_size, proof, signed_checkpoint)
        except ConflictError as conflict:
            ...  # build a proof from conflict.known_size and try again

The returned lines are the witness's word only: append them to the checkpoint
and verify them with the witness keys you trust (tlogcore.note.open_note).
"""

import hashlib
from collections.abc import Sequence
from types import TracebackType

import httpx

from tlogcore.encoding import b64encode, decode_utf8, parse_decimal
from tlogcore.errors import MalformedError
from tlogcore.merkle import MAX_TREE_SIZE
from tlogcore.note import SIGNATURE_PREFIX, parse_note

SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_RESPONSE_SIZE = 128 * 1024


class WitnessClientError(Exception):
    """A witness did not cosign; `status` is the HTTP status, or None if it could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WitnessUnavailableError(WitnessClientError):
    """The witness could not be reached, or did not answer in time."""


class ConflictError(WitnessClientError):
    """409: the witness's latest size for this log is `known_size`, not the old size we sent."""

    def __init__(self, known_size: int) -> None:
        super().__init__(f"witness knows tree size {known_size}", 409)
        self.known_size = known_size


class WitnessProtocolError(WitnessClientError):
    """The witness answered something the protocol does not allow (the server misbehaved)."""


def request_body(old_size: int, proof: Sequence[bytes], checkpoint_note: bytes) -> bytes:
    """`old <size>\\n`, one base64 line per proof hash, a blank line, the signed checkpoint (tlog-witness)."""
    if not 0 <= old_size <= MAX_TREE_SIZE:
        raise ValueError(f"old size {old_size} is out of range")
    if any(len(h) != 32 for h in proof):
        raise ValueError("consistency proof hashes must be 32 bytes")
    lines = [f"old {old_size}\n", *(b64encode(h) + "\n" for h in proof), "\n"]
    return "".join(lines).encode() + checkpoint_note


def parse_cosignatures(body: bytes) -> list[str]:
    """Split a 200 body into signature lines (`— <name> <base64>\\n` each), checking their syntax."""
    text = decode_utf8(body, "witness response")
    if not text.endswith("\n") or not text.startswith(SIGNATURE_PREFIX) or "\n\n" in text:
        raise MalformedError("witness response is not a list of signature lines")
    parse_note(b"x\n\n" + body)  # the syntax of signature lines, checked by the one note parser
    return [line + "\n" for line in text[:-1].split("\n")]


class WitnessClient:
    def __init__(
        self,
        base_url: str,
        timeout: float | httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> "WitnessClient":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, content: bytes | None = None) -> tuple[int, str, bytes]:
        """Status, media type and body (at most MAX_RESPONSE_SIZE bytes are read)."""
        try:
            async with self._http.stream(method, path, content=content) as response:
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > MAX_RESPONSE_SIZE:
                        raise WitnessProtocolError(
                            f"witness {self.base_url}: {method} {path}: answer over {MAX_RESPONSE_SIZE} bytes",
                            response.status_code,
                        )
                    chunks.append(chunk)
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
                return response.status_code, media_type, b"".join(chunks)
        except httpx.TransportError as exc:  # connection refused, timeout, reset…
            raise WitnessUnavailableError(f"witness {self.base_url}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:  # an answer httpx cannot read (a body its Content-Encoding does not decode…)
            raise WitnessProtocolError(f"witness {self.base_url}: unreadable answer: {type(exc).__name__}") from exc

    async def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint_note: bytes) -> list[str]:
        """POST /add-checkpoint; the cosignature lines on 200, ConflictError on 409, WitnessClientError else."""
        status, media_type, body = await self._send(
            "POST", "/add-checkpoint", request_body(old_size, proof, checkpoint_note)
        )
        if status == 409:
            try:
                if media_type != SIZE_MEDIA_TYPE or not body.endswith(b"\n"):
                    raise MalformedError(f"want {SIZE_MEDIA_TYPE} and '<size>\\n', got {media_type!r}")
                known = parse_decimal(body[:-1].decode("ascii", "replace"), "known size", MAX_TREE_SIZE)
            except MalformedError as exc:
                raise WitnessProtocolError(f"witness {self.base_url}: bad 409 answer: {exc}", 409) from None
            raise ConflictError(known)
        if status != 200:
            reason = body[:300].decode("utf-8", "replace").strip()
            raise WitnessClientError(f"witness {self.base_url} refused: {status} {reason}", status)
        try:
            return parse_cosignatures(body)
        except MalformedError as exc:
            raise WitnessProtocolError(f"witness {self.base_url}: bad cosignature answer: {exc}", 200) from None

    async def latest_checkpoint(self, origin: str) -> bytes | None:
        """GET /<hex SHA-256(origin)>/checkpoint: the witness's latest cosigned checkpoint, None if it has none."""
        path = f"/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint"
        status, _, body = await self._send("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise WitnessClientError(f"witness {self.base_url}: GET {path}: {status}", status)
        return body
