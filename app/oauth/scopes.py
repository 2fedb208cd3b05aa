"""The scopes of HMS tokens: one grammar for every resource, in the SMART App Launch v2 style.

    scope      = context "/" resource "." permissions
    context    = "patient" | "user" | "system"
    resource   = a name of RESOURCES, or "*" for all of them
    permissions= a non-empty subsequence of "cruds" (create, read, update, delete, search), in that order

e.g. `patient/Appointment.cruds` (a patient's app books and reads their own visits), `user/Invoice.rs`
(read and search what the signed-in person may read), `system/*.rs` (a back-end integration reads
everything its service account's role may read). SMART v1's `.read` and `.write` are accepted as `.rs` and
`.cud`.

- `patient/` scopes are for a patient's own tokens, `user/` for a person signed in through the authorization
  code flow, `system/` for client credentials (a service account); a token gets only scopes of its context.
- What a token may do is the scope ∩ the user's role ∩ ownership and the care relationship: a scope never
  widens the access policy (`app.policy`), it only narrows it. The policy sees a token's scopes as
  permissions `<kind>.<verb>` (`appointment.read`), where `c`, `u` and `d` are `write`, `r` and `s` are `read`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# What each resource name of a scope covers, as the access policy's kinds (`app.policy.Kind`).
RESOURCES: dict[str, str] = {
    "Patient": "patient",
    "Practitioner": "practitioner",  # doctors and departments (reading is open to every signed-in role)
    "PractitionerRole": "practitioner",  # a doctor in a department, with their specialty
    "Organization": "practitioner",  # the clinic and its departments
    "Appointment": "appointment",
    "Slot": "appointment",  # free slots are read to book an appointment
    "Schedule": "schedule",  # a doctor's availability windows and time off
    "Encounter": "encounter",
    "Condition": "record",
    "MedicationRequest": "record",
    "AllergyIntolerance": "record",
    "Observation": "record",
    "Invoice": "invoice",  # with its payments, refunds and claims
    "AuditEvent": "audit",
}
CONTEXTS = ("patient", "user", "system")
PERMISSIONS = "cruds"
_VERB = {"c": "write", "u": "write", "d": "write", "r": "read", "s": "read"}
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Za-z]+)\.(read|write|c?r?u?d?s?)$")
# Scopes that are not about a resource. `offline_access` must be allowed to the client; the others are granted
# to any client of the authorization code flow (they name who signed in and which patient is open, no data):
# OpenID Connect's `openid` and `profile`, SMART's `fhirUser` (the id token names the person's FHIR resource) and
# `launch/patient` (a standalone launch with a patient in context; a clinician picks the patient).
IDENTITY_SCOPES = frozenset({"openid", "profile", "fhirUser"})
LAUNCH_PATIENT = "launch/patient"
LAUNCH_SCOPES = IDENTITY_SCOPES | {LAUNCH_PATIENT}
OTHER_SCOPES = frozenset({"offline_access"}) | LAUNCH_SCOPES


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    context: str
    resource: str  # a RESOURCES name or "*"
    permissions: str  # a subsequence of "cruds"

    def __str__(self) -> str:
        return f"{self.context}/{self.resource}.{self.permissions}"

    def covers(self, other: Scope) -> bool:
        """Does holding this scope allow everything `other` asks?"""
        return (self.context == other.context and self.resource in ("*", other.resource)
                and set(other.permissions) <= set(self.permissions))


def parse(text: str) -> Scope:
    match = _SCOPE.match(text)
    if not match:
        raise ScopeError(f"{text[:80]!r} is not a scope")
    context, resource, permissions = match.groups()
    if resource != "*" and resource not in RESOURCES:
        raise ScopeError(f"{resource[:40]!r} is not a resource HMS knows")
    permissions = {"read": "rs", "write": "cud"}.get(permissions, permissions)
    if not permissions:
        raise ScopeError(f"{text[:80]!r} names no permission")
    return Scope(context, resource, permissions)


def parse_all(text: str | None) -> tuple[list[Scope], set[str]]:
    """The resource scopes and the other scopes (`offline_access`) of a space-separated scope string."""
    resource_scopes: list[Scope] = []
    others: set[str] = set()
    for part in (text or "").split():
        if part in OTHER_SCOPES:
            others.add(part)
        else:
            resource_scopes.append(parse(part))
    return resource_scopes, others


def validate(text: str) -> str:
    """The scope string, normalized (sorted, no duplicates), or ScopeError."""
    resource_scopes, others = parse_all(text)
    return " ".join(sorted({str(s) for s in resource_scopes} | others))


def grantable(requested: str | None, allowed: str, *, context: str | tuple[str, ...]) -> str:
    """The scopes a token gets: every requested scope must be of `context` (or of one of several) and covered by
    one the client is allowed (RFC 6749 `invalid_scope` otherwise, raised as ScopeError); the launch and identity
    scopes are granted to any client when asked, except in the `system` context. No request: everything allowed
    in the (first) context."""
    contexts = (context,) if isinstance(context, str) else context
    allowed_scopes, allowed_others = parse_all(allowed)
    if requested is None or not requested.strip():
        chosen = [s for s in allowed_scopes if s.context == contexts[0]]
        return " ".join(sorted({str(s) for s in chosen}))
    wanted, others = parse_all(requested)
    for scope in wanted:
        if scope.context not in contexts:
            raise ScopeError(f"{scope} is not a {' or '.join(c + '/' for c in contexts)} scope")
        if not any(a.covers(scope) for a in allowed_scopes):
            raise ScopeError(f"{scope} is not allowed for this client")
    free = LAUNCH_SCOPES if "system" not in contexts else frozenset()
    if others - allowed_others - free:
        raise ScopeError(f"{sorted(others - allowed_others - free)[0]} is not allowed for this client")
    return " ".join(sorted({str(s) for s in wanted} | others))


def supported() -> list[str]:
    """The scopes to advertise (RFC 8414 `scopes_supported`): every resource of every context with every
    permission; any subsequence of `cruds` is accepted as well."""
    return ["offline_access", *sorted(LAUNCH_SCOPES)] + [f"{context}/{resource}.{PERMISSIONS}" for context in CONTEXTS
                                 for resource in ("*", *RESOURCES)]


def permissions(text: str) -> frozenset[str]:
    """The policy's permissions (`appointment.read`, …) that a granted scope string gives."""
    result: set[str] = set()
    kinds = set(RESOURCES.values())
    for scope in parse_all(text)[0]:
        covered = kinds if scope.resource == "*" else {RESOURCES[scope.resource]}
        for letter in scope.permissions:
            result |= {f"{kind}.{_VERB[letter]}" for kind in covered}
    return frozenset(result)


def describe(text: str, *, chosen_patient: bool = False) -> list[str]:
    """Plain sentences for the consent page, one per scope. `chosen_patient`: a clinician's `patient/` scopes are
    about the patient they choose (`launch/patient`), not about themselves."""
    verbs = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
    whose = {"patient": "the chosen patient's" if chosen_patient else "your own", "user": "what you may see of",
             "system": "all"}
    everything = {"patient": "all the chosen patient's data" if chosen_patient else "all your own data",
                  "user": "everything you may see", "system": "all data"}
    lines = []
    for scope in parse_all(text)[0]:
        what = (everything[scope.context] if scope.resource == "*"
                else f"{whose[scope.context]} {_plural(scope.resource)}")
        actions = ", ".join(verbs[p] for p in scope.permissions)
        lines.append(f"{actions.capitalize()} {what}")
    words = set(text.split())
    if words & IDENTITY_SCOPES:
        lines.append("Know who you are (your name and role)")
    if LAUNCH_PATIENT in words:
        lines.append("Know which patient's record is open")
    if "offline_access" in words:
        lines.append("Stay connected when you are not using it (until you revoke it)")
    return lines


def _plural(resource: str) -> str:
    names = {"Patient": "patient profiles", "Practitioner": "doctors and departments",
             "PractitionerRole": "doctors' roles in departments", "Organization": "the clinic and its departments",
             "Appointment": "appointments", "Slot": "free appointment slots", "Schedule": "doctors' schedules",
             "Encounter": "visit notes", "Condition": "diagnoses", "MedicationRequest": "prescriptions",
             "AllergyIntolerance": "allergies", "Observation": "vital signs", "Invoice": "bills and payments",
             "AuditEvent": "audit log"}
    return names[resource]
