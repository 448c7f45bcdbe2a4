"""Reading and writing a customer's health profile: validated, derived, sealed, and audited in one transaction.

Break-glass: platform administrators are not the vendor's care team, so their reads must state a reason
(X-Access-Justification), which the audit row keeps. Every read and write writes its audit row in the caller's
transaction: if the audit row cannot be written, the access does not happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from nutrimatch.audit import Actor, RequestInfo, record_by
from nutrimatch.db import Connection
from nutrimatch.errors import Forbidden, InvalidInput, NotFound
from nutrimatch.health.limits import derive_limits
from nutrimatch.health.profile import HealthProfile
from nutrimatch.health.store import StoredProfile, load_profile, save_profile
from nutrimatch.routes import Role

ENTITY = "customer_health_profile"


class JustificationRequired(Forbidden):
    code = "justification_required"


class HealthProfileWrite(HealthProfile):
    """A profile as a request body. Its repr hides the PHI: frameworks log handler arguments (Powertools'
    resolver does at DEBUG), and a log line must never carry a diagnosis."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "phi", "redacted"


def audited_state(stored: StoredProfile) -> dict[str, Any]:
    """What an audit row keeps of a profile version (sealed): the profile itself, not what derives from it."""
    return stored.model_dump(mode="json", include={"version", "profile"})


def validated(profile: HealthProfile, today: date) -> HealthProfile:
    """The profile checked again against today's date (a birth date must give a plausible age today)."""
    try:
        return HealthProfile.model_validate(profile.model_dump(), context={"today": today})
    except ValidationError as error:
        details = [{"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"], "type": e["type"]}
                   for e in error.errors(include_input=False)]
        names = ", ".join(d["field"] or "profile" for d in details)
        raise InvalidInput(f"invalid health profile: {names}", details={"errors": details}) from error


def read(conn: Connection, actor: Actor, request: RequestInfo, customer_id: UUID) -> StoredProfile:
    if actor.role == Role.PLATFORM_ADMIN and not (request.justification or "").strip():
        raise JustificationRequired(
            "platform administrators must give a reason to read health data: send X-Access-Justification")
    stored = load_profile(conn, actor.require_vendor(), customer_id)
    if stored is None:
        raise NotFound("this customer has no health profile")
    record_by(conn, actor, request, action="health_profile.read", entity=ENTITY, entity_id=str(customer_id))
    return stored.model_copy(update={"limits": stored.limits_on(date.today())})


def write(conn: Connection, actor: Actor, request: RequestInfo, customer_id: UUID,
          profile: HealthProfile) -> StoredProfile:
    """Store a new version of the profile with the limits derived from it today."""
    today = date.today()
    profile = validated(profile, today)
    previous, saved = save_profile(conn, actor.require_vendor(), customer_id, profile,
                                   derive_limits(profile, today=today), updated_by=actor.user_id)
    record_by(conn, actor, request, action="health_profile.updated" if previous else "health_profile.created",
              entity=ENTITY, entity_id=str(customer_id), before=audited_state(previous) if previous else None,
              after=audited_state(saved))
    return saved
