"""The API's door to the access policy: who the bearer token speaks for, and the policy's answer for them.

- Every operation but the public ones (sign-up, the OpenAPI document) needs `Authorization: Bearer <token>`
  (`app.oauth.bearer`); without one, or with one that is not acceptable: 401 with
  `WWW-Authenticate: Bearer error="invalid_token"`. A cookie session never authorizes the API: the signed-in
  user of the pages is not even looked at (so the API has no CSRF surface), and a bearer request never reads
  or writes the cookie session.
- `authorize(verb, resource)` asks `app.policy.decide` with the token's scopes, as the pages ask it without:
  a missing scope is 403 `insufficient_scope` (RFC 6750), another patient's resource 404, a refused role 403.
  Every refusal is audited (`access.denied`, with the client id).
"""
from __future__ import annotations

from typing import NoReturn

from flask import g, request
from flask_login import AnonymousUserMixin

from app.api.problems import Problem
from app.audit.denials import record_denial
from app.oauth import bearer as bearer_tokens
from app.policy import Actor, Decision, Kind, Resource, Verb, decide

REALM = 'realm="HMS API"'


def authenticate(operation, *, audience: str | tuple[str, ...] | None = None) -> None:
    """Before every API (and FHIR) view: the token's user becomes the request's user (or nobody, for a public
    one). `audience`: the `aud` values this door accepts (the API's by default)."""
    g._login_user = AnonymousUserMixin()  # Flask-Login: never the cookie session's user
    if operation is None or operation.public:
        return
    try:
        bearer = bearer_tokens.authenticate(request.headers.get("Authorization"),
                                            audience=audience or bearer_tokens.api_audience())
    except bearer_tokens.BearerError as error:
        if error.reason != "missing":  # a token was shown and refused: audited (no token is just anonymous)
            record_denial(None, None, None, reason=f"token_{error.reason}")
        raise Problem(401, error.description, headers={
            "WWW-Authenticate": f'Bearer {REALM}, error="invalid_token", error_description="{error.description}"'
        }) from None
    g._login_user = bearer.user
    g.api_bearer = bearer
    g.api_client_id = bearer.client.client_id
    g.api_user_id = bearer.user.id


def admit(operation, *, audience: str | tuple[str, ...] | None = None) -> None:
    """Before every request of a program's door (the API, FHIR): the bearer token, and the rate limits of the
    address (and of the operation, e.g. sign-up) and of the client, counted together in one transaction; a
    refused token counts too."""
    from app.api import ratelimit

    address = request.remote_addr or "unknown"
    buckets = [("address", address, "HMS_API_RATE_LIMIT_ADDRESS")]
    extra = getattr(operation, "rate_limit", None)
    if extra:
        buckets.append((extra, address, f"HMS_API_RATE_LIMIT_{extra.upper()}"))
    try:
        authenticate(operation, audience=audience)
    finally:
        if g.get("api_client_id"):
            buckets.append(("client", g.api_client_id, "HMS_API_RATE_LIMIT_CLIENT"))
        ratelimit.count(*buckets)


def actor() -> Actor:
    return g.api_bearer.actor


def authorize(verb: Verb, resource: Resource) -> Decision:
    """The policy's decision for the token, or the request ends with the refusal (see the module's docstring)."""
    decision = decide(actor(), verb, resource)
    if not decision.allowed:
        refuse(decision, verb, resource)
    return decision


def require_area(area: str, kind: Kind, verb: Verb = Verb.WRITE) -> Decision:
    """A role's workspace (`app.policy.AREAS`), entered with a token that has `kind`'s scope for `verb`."""
    return authorize(verb, Resource.area_of(area, scope_kind=kind))


def refuse(decision: Decision, verb: Verb, resource: Resource) -> NoReturn:
    record_denial(decision, verb, resource)
    if decision.basis.startswith("scope_"):
        needed = decision.basis.removeprefix("scope_")
        raise Problem(403, f"The access token's scopes do not allow this ({needed}).", slug="insufficient-scope",
                      title="Insufficient scope", headers={
                          "WWW-Authenticate": f'Bearer {REALM}, error="insufficient_scope", '
                                              f'error_description="The token needs the {needed} permission"'})
    if decision.status == 404:
        raise Problem(404, "No such resource.")
    if decision.basis == "no_relationship":
        raise Problem(403, "The patient is not in your care. Emergency (break-glass) access is given on the "
                           "pages, with a stated reason.", slug="no-care-relationship", title="Not in your care")
    raise Problem(403, "Your role does not allow this.")
