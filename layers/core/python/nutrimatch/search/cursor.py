"""Keyset cursors: the sort key and id of the last product of a page, opaque to clients (base64url JSON).

A page continues strictly after (key, id) in the sort's order, so rows inserted or changed elsewhere in the
order never shift the rows of the next page the way an OFFSET would.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from uuid import UUID

from nutrimatch.errors import InvalidInput

SortKey = str | Decimal | float | None


class KeyKind(Enum):
    TEXT = "text"
    NUMERIC = "numeric"
    SCORE = "score"


@dataclass(frozen=True)
class Cursor:
    sort: str
    key: SortKey
    id: UUID


def encode_cursor(cursor: Cursor) -> str:
    key = str(cursor.key) if isinstance(cursor.key, Decimal) else cursor.key
    raw = json.dumps({"s": cursor.sort, "k": key, "i": str(cursor.id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, sort: str, kind: KeyKind) -> Cursor:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("s") != sort:
            raise ValueError("another sort")
        if not isinstance(data["i"], str):
            raise ValueError("an id is a string")
        return Cursor(sort, _key(data["k"], kind), UUID(data["i"]))
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, InvalidOperation) as error:
        raise InvalidInput("cursor is not a next_cursor of this search's sort order",
                           details={"field": "cursor"}) from error


def _key(raw: object, kind: KeyKind) -> SortKey:
    if raw is None:
        if kind is KeyKind.SCORE:
            raise ValueError("a relevance cursor always has a score")
        return None
    if kind is KeyKind.TEXT and isinstance(raw, str):
        if "\x00" in raw:
            raise ValueError("PostgreSQL text holds no NUL")
        return raw
    if kind is KeyKind.NUMERIC and isinstance(raw, str):
        value = Decimal(raw)
        if not value.is_finite():
            raise ValueError("not a number")
        return value
    if kind is KeyKind.SCORE and isinstance(raw, int | float) and not isinstance(raw, bool):
        return _real(float(raw))
    raise ValueError("key of the wrong type")


def _real(score: float) -> float:
    """A score as the `real` ts_rank gives and the page query compares it as: PostgreSQL refuses a value that
    overflows `real` or rounds to zero in it."""
    as_real = struct.unpack("f", struct.pack("f", score))[0]
    if math.isinf(as_real) or math.isnan(as_real) or (as_real == 0 and score != 0):
        raise ValueError("not a real")
    return score
