"""Who acts: what the core needs to know of a caller to scope its work and to audit it."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from nutrimatch.audit.chain import record
from nutrimatch.audit.context import RequestInfo
from nutrimatch.db import Connection


class Actor(Protocol):
    """An authenticated caller acting on one vendor (nutrimatch.api.Caller is one)."""

    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> str: ...

    def require_vendor(self) -> UUID: ...


def record_by(conn: Connection, actor: Actor, request: RequestInfo, *, action: str, entity: str, entity_id: str,
              before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """`record` for an actor, on the actor's vendor."""
    record(conn, vendor_id=actor.require_vendor(), actor_user_id=actor.user_id, actor_role=actor.role,
           action=action, entity=entity, entity_id=entity_id, request=request, before=before, after=after)
