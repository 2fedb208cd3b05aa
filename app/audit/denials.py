"""The audit of a refusal, the same for every door: who (and with which client), what, which resource, why."""
from __future__ import annotations

from flask import request

from app.policy import Decision, Resource, Verb


def record_denial(decision: Decision | None, verb: Verb | None, resource: Resource | None, *,
                  reason: str | None = None, category: str | None = None) -> None:
    """Write `access.denied` after the request's changes are rolled back (see `app.web.unit_of_work`)."""
    from app.events.outbox import emit
    from app.web.unit_of_work import after_rollback

    details = {"endpoint": request.endpoint, "method": request.method, "path": request.path[:500],
               "status": decision.status if decision else 401,
               "reason": reason or (decision.basis if decision else "unauthenticated")}
    if verb is not None:
        details["action"] = verb.value
    if category is not None:
        details["category"] = category
    kind = resource.kind.value if resource else "api"
    ident = resource.id if resource else request.path[:64]
    patient_id = resource.patient_id if resource else None
    after_rollback(lambda: emit("access.denied", kind, ident, details, patient_id=patient_id, outcome="denied"))
