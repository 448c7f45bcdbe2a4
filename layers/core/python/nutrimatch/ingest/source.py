"""Reading the uploaded object from S3: ranged reads for planning, streamed ranges for loading."""

from __future__ import annotations

import codecs
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STREAM_BLOCK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class S3Object:
    client: Any
    bucket: str
    key: str

    def size(self) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"])

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end) — the RangeReader the planner scans with."""
        if end <= start:
            return b""
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")["Body"]
        data: bytes = body.read()
        return data

    def stream_range(self, start: int, end: int, block_bytes: int = STREAM_BLOCK_BYTES) -> Iterator[bytes]:
        """Bytes [start, end) in blocks, never holding the range in memory."""
        if end <= start:
            return
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")["Body"]
        try:
            while block := body.read(block_bytes):
                yield block
        finally:
            body.close()

    def sha256(self) -> str:
        """The object's SHA-256 (hex), read in one streamed pass."""
        digest = hashlib.sha256()
        for block in self.stream_range(0, self.size()):
            digest.update(block)
        return digest.hexdigest()


class SequentialReader:
    """A RangeReader for a front-to-back scan (the planner's): one GET streams the object, and a range that
    starts within the last one returned or where it ended continues that stream instead of a new GET (the
    planner reads the head, then scans from just after the byte-order mark). With `digest`, a scan that
    streamed the whole object from its first byte in one GET also knows its SHA-256.
    """

    def __init__(self, source: S3Object, size: int, *, digest: bool = False) -> None:
        self._source = source
        self._size = size
        self._body: Any = None
        self._last = b""
        self._last_start = 0
        self._position = 0
        self._hashing = digest
        self._digest: Any = None  # hashlib.sha256 of the bytes streamed so far, while they started at byte 0

    @property
    def sha256(self) -> str | None:
        """The object's SHA-256 (hex) if this reader streamed all of it from the start, else None."""
        complete = self._digest is not None and self._position == self._size
        return self._digest.hexdigest() if complete else None

    def read_range(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        if self._body is None or not self._last_start <= start <= self._position:
            self.close()
            self._body = self._source.client.get_object(
                Bucket=self._source.bucket, Key=self._source.key, Range=f"bytes={start}-{self._size - 1}")["Body"]
            self._last, self._last_start, self._position = b"", start, start
            self._digest = hashlib.sha256() if self._hashing and start == 0 else None
        parts = [self._last[start - self._last_start:end - self._last_start]]
        while self._position < end and (part := self._body.read(end - self._position)):
            parts.append(part)
            self._position += len(part)
            if self._digest is not None:
                self._digest.update(part)
        self._last, self._last_start = b"".join(parts), start
        return self._last

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def __enter__(self) -> SequentialReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transcode_to_utf8(blocks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """For encodings PostgreSQL cannot read (UTF-16): decode incrementally, re-encode as UTF-8."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for block in blocks:
        text = decoder.decode(block)
        if text:
            yield text.encode("utf-8")
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail.encode("utf-8")


class BlockStream(io.RawIOBase):
    """A raw binary stream over an iterator of blocks, so io.TextIOWrapper and csv can read it lazily."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._blocks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
