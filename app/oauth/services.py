"""The authorization server's rules (RFC 6749, 7636, 7009, 7662): clients, consent, codes and tokens.

Written directly rather than through Authlib's framework integration: each grant is a short function here, the
errors are RFC 6749's own (`OAuthError`), and the one effect that must outlive an error answer (a reused refresh
token revokes its grant) is committed through the unit of work (`keep_despite_error`), which a framework that
owns the request cycle would hide.

- Access tokens are ES256 JWTs (`keys.sign_access_token`) with the claims `app.oauth.bearer` checks: `sub`,
  `aud`, `client_id`, `scope`, `sv` (the user's session version) and, for a person's grant, `gid`.
- Refresh tokens, codes and client secrets are 256 random bits; only their SHA-256 is kept.
- A refresh token is issued with the authorization code only when `offline_access` was granted (and the client
  may use the refresh_token grant); every use rotates it; a used one presented again revokes the whole grant.
Functions only add and flush; the request commits.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote_plus, urlencode, urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Role, User
from app.events.outbox import emit
from app.extensions import db
from app.oauth import bearer, keys, scopes
from app.oauth.models import (ClientKind, GrantType, OAuthAuthorizationCode, OAuthClient, OAuthGrant,
                              OAuthRefreshToken, RevokedAccessToken)
from app.timeutil import utcnow

CODE_SECONDS = 120  # an authorization code is exchanged at once (RFC 6749 section 4.1.2: at most 10 minutes)
SERVICE_ROLES = (Role.DOCTOR, Role.CLERK, Role.ADMIN)
SERVICE_EMAIL_DOMAIN = "service.hms.invalid"
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 section 4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL(SHA-256(verifier)), no padding
MAX_PARAMETER = 2000


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def refresh_lifetime() -> timedelta:
    return timedelta(days=current_app.config["HMS_REFRESH_TOKEN_DAYS"])


# --- errors -------------------------------------------------------------------------------------------------------

class OAuthError(Exception):
    """An RFC 6749 error (section 5.2 at the token endpoint, 4.1.2.1 at the authorization endpoint)."""

    def __init__(self, error: str, description: str, *, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def as_json(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


# --- clients (the admin's page) ------------------------------------------------------------------------------------

class ClientError(Exception):
    """A registration the rules refuse; `field` names the form field to blame."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass
class ClientRegistration:
    name: str
    kind: ClientKind
    redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: str
    service_role: Role | None = None


def check_redirect_uri(uri: str) -> str:
    """An absolute https URI, or http on the loopback host (RFC 8252 section 7.3); no fragment (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    if len(uri) > 500 or any(ch.isspace() or ord(ch) < 32 for ch in uri):
        raise ClientError(f"{uri[:80]} is not an address.", "redirect_uris")
    if not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[::1\](:[0-9]{1,5})?", parts.netloc):
        raise ClientError(f"{uri[:80]}: name a host (and port), nothing else, before the path.", "redirect_uris")
    if parts.fragment or "#" in uri:
        raise ClientError(f"{uri[:80]}: a redirect address has no #fragment.", "redirect_uris")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return uri
    raise ClientError(f"{uri[:80]}: use https, or http only for 127.0.0.1 or localhost.", "redirect_uris")


def _check_registration(reg: ClientRegistration) -> ClientRegistration:
    grant_types = [g for g in GrantType if g.value in reg.grant_types]
    if not grant_types:
        raise ClientError("Choose at least one grant type.", "grant_types")
    if GrantType.REFRESH_TOKEN in grant_types and GrantType.AUTHORIZATION_CODE not in grant_types:
        raise ClientError("Refresh tokens come with the authorization code grant.", "grant_types")
    if GrantType.CLIENT_CREDENTIALS in grant_types and reg.kind is not ClientKind.CONFIDENTIAL:
        raise ClientError("Only a confidential client may use client credentials.", "grant_types")
    uris = [check_redirect_uri(uri) for uri in dict.fromkeys(u.strip() for u in reg.redirect_uris if u.strip())]
    if GrantType.AUTHORIZATION_CODE in grant_types and not uris:
        raise ClientError("The authorization code grant needs at least one redirect address.", "redirect_uris")
    try:
        allowed = scopes.validate(reg.allowed_scopes)
    except scopes.ScopeError as error:
        raise ClientError(str(error), "allowed_scopes") from None
    if not allowed:
        raise ClientError("Name at least one scope.", "allowed_scopes")
    if len(allowed) > 2000:
        raise ClientError("Too many scopes.", "allowed_scopes")
    contexts = {s.context for s in scopes.parse_all(allowed)[0]}
    if "system" in contexts and GrantType.CLIENT_CREDENTIALS not in grant_types:
        raise ClientError("system/ scopes are for client credentials.", "allowed_scopes")
    if contexts - {"system"} and GrantType.AUTHORIZATION_CODE not in grant_types:
        raise ClientError("patient/ and user/ scopes are for the authorization code grant.", "allowed_scopes")
    if GrantType.CLIENT_CREDENTIALS in grant_types and reg.service_role not in SERVICE_ROLES:
        raise ClientError("Choose the role the client acts with.", "service_role")
    return ClientRegistration(name=reg.name.strip(), kind=reg.kind, redirect_uris=uris,
                              grant_types=[g.value for g in grant_types], allowed_scopes=allowed,
                              service_role=reg.service_role if GrantType.CLIENT_CREDENTIALS in grant_types else None)


def register_client(registration: ClientRegistration, *, by: User | None) -> tuple[OAuthClient, str | None]:
    """A new client and its secret (None for a public client): the secret is shown once, only its hash kept."""
    reg = _check_registration(registration)
    client_id = secrets.token_hex(16)  # lower-case: the column's collation ignores case
    secret = new_secret() if reg.kind is ClientKind.CONFIDENTIAL else None
    client = OAuthClient(client_id=client_id, name=reg.name, kind=reg.kind,
                         secret_hash=digest(secret) if secret else None, redirect_uris=reg.redirect_uris,
                         grant_types=reg.grant_types, allowed_scopes=reg.allowed_scopes,
                         created_by_id=by.id if by is not None else None)
    if reg.service_role is not None:
        client.service_user = User(role=reg.service_role, email=f"client-{client_id}@{SERVICE_EMAIL_DOMAIN}",
                                   full_name=f"{reg.name} (API client)"[:120], password_hash=None,
                                   service_account=True)
    try:
        with db.session.begin_nested():  # 128 random bits colliding: not in this universe, but never a 500
            db.session.add(client)
    except IntegrityError:
        raise ClientError("Registration failed; try again.", "name") from None
    emit("oauth.client_registered", "oauth_client", client.client_id,
         {"name": client.name, "kind": client.kind.value, "grant_types": client.grant_types,
          "scope": client.allowed_scopes, "service_role": reg.service_role.value if reg.service_role else None})
    return client, secret


def rotate_secret(client: OAuthClient) -> str:
    """A new secret for a confidential client; the old one stops working at once."""
    if client.kind is not ClientKind.CONFIDENTIAL:
        raise ClientError("A public client has no secret.", "secret")
    secret = new_secret()
    client.secret_hash = digest(secret)
    client.secret_rotated_at = utcnow()
    db.session.flush()
    emit("oauth.client_secret_rotated", "oauth_client", client.client_id, {})
    return secret


def set_client_active(client: OAuthClient, active: bool) -> None:
    """Disable (its tokens stop at once: `bearer.authenticate` checks the client) or enable a client."""
    if client.active is active:
        return
    client.active = active
    db.session.flush()
    emit("oauth.client_enabled" if active else "oauth.client_disabled", "oauth_client", client.client_id, {})


def clients_query() -> sa.Select:
    return sa.select(OAuthClient).order_by(OAuthClient.active.desc(), OAuthClient.name, OAuthClient.id)


def get_client(client_pk: int) -> OAuthClient | None:
    return db.session.get(OAuthClient, client_pk)


def find_client(client_id: object) -> OAuthClient | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    return db.session.scalar(sa.select(OAuthClient).where(OAuthClient.client_id == client_id))


# --- client authentication at the token, revocation and introspection endpoints ------------------------------

def authenticate_client(authorization: str | None, form) -> OAuthClient:
    """The client of a request (RFC 6749 section 2.3): HTTP Basic or the form's client_id and client_secret for
    a confidential client, the client_id alone for a public one. One method only."""
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if authorization is not None and not basic:
        raise invalid_client("Use HTTP Basic or the request body to authenticate the client.")
    if basic and "client_secret" in form:
        raise OAuthError("invalid_request", "Use one client authentication method, not two.")
    if basic:
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise invalid_client("Malformed Basic credentials.") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise invalid_client("Malformed Basic credentials.")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 section 2.3.1
        if "client_id" in form and form["client_id"] != client_id:
            raise OAuthError("invalid_request", "The client_id of the body is not the authenticated client.")
    else:
        client_id, secret = form.get("client_id"), form.get("client_secret")
    client = find_client(client_id)
    if client is None or not client.active:
        raise invalid_client()
    if client.kind is ClientKind.PUBLIC:
        if secret:
            raise invalid_client("A public client has no secret.")
        return client
    if not secret or not client.secret_hash or not hmac.compare_digest(digest(secret), client.secret_hash):
        raise invalid_client()
    return client


# --- the authorization endpoint (consent) ----------------------------------------------------------------------

class BadAuthorizationRequest(Exception):
    """The client or redirect address is unknown: the person sees an error page, never a redirect."""


@dataclass
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    state: str | None
    scope: str = ""
    code_challenge: str = ""
    error: OAuthError | None = None  # an error to send back to the client's redirect address
    described: list[str] = field(default_factory=list)
    audience: str = ""  # the `aud` of its access tokens: the API's, or the FHIR base URL (SMART's `aud`)
    nonce: str | None = None  # OpenID Connect: echoed in the id token
    pick_patient: bool = False  # a clinician's `launch/patient`: they choose the patient on the consent page

    @property
    def launch_patient(self) -> bool:
        return scopes.LAUNCH_PATIENT in self.scope.split()

    def redirect(self, **params: str) -> str:
        if self.state is not None:
            params["state"] = self.state
        return self.redirect_uri + ("&" if "?" in self.redirect_uri else "?") + urlencode(params)

    @property
    def redirect_origin(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}"

    def error_redirect(self) -> str:
        assert self.error is not None
        return self.redirect(error=self.error.error, error_description=self.error.description)


def scope_contexts(user: User, requested: str | None) -> tuple[str, ...]:
    """The scope contexts a person may be granted: a patient's own (`patient/`), a staff member's (`user/`); a
    doctor who asks for `launch/patient` also `patient/` scopes, limited to the patient they pick."""
    if user.role is Role.PATIENT:
        return ("patient",)
    if user.role is Role.DOCTOR and scopes.LAUNCH_PATIENT in (requested or "").split():
        return ("user", "patient")
    return ("user",)


def _audience(args, scope: str) -> str:
    """The `aud` of the tokens (SMART App Launch: the FHIR base URL the app will call, checked here): the FHIR
    endpoint's or the API's; by default the API's, or FHIR's for a `launch/patient` request (a SMART app)."""
    given = args.get("aud")
    if given is None:
        return bearer.fhir_audience() if scopes.LAUNCH_PATIENT in scope.split() else bearer.api_audience()
    audience = given.rstrip("/")
    if audience not in (bearer.fhir_audience(), bearer.api_audience()):
        raise OAuthError("invalid_request", f"aud must name this server's FHIR endpoint ({bearer.fhir_audience()}) "
                                            f"or its API ({bearer.api_audience()}).")
    if scopes.LAUNCH_PATIENT in scope.split() and audience != bearer.fhir_audience():
        raise OAuthError("invalid_request", "launch/patient is for the FHIR endpoint: aud must be "
                                            f"{bearer.fhir_audience()}.")
    return audience


def authorization_request(args, user: User) -> AuthorizationRequest:
    """Check a request of the authorization endpoint (RFC 6749 section 4.1.1, RFC 7636 section 4.3). A bad client
    or redirect address raises BadAuthorizationRequest; any other problem is the request's `error`, for the client."""
    for name in ("client_id", "redirect_uri"):
        if len(args.getlist(name)) > 1:
            raise BadAuthorizationRequest(f"The request names {name} more than once.")
    client = find_client(args.get("client_id"))
    if client is None or not client.active:
        raise BadAuthorizationRequest("The application asking for access is not registered with us, or is disabled.")
    redirect_uri = args.get("redirect_uri")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        raise BadAuthorizationRequest("The application sent an address to return to that is not registered for it.")
    state = args.get("state")
    request = AuthorizationRequest(client=client, redirect_uri=redirect_uri,
                                   state=state[:MAX_PARAMETER] if state is not None else None)
    duplicated = [n for n in ("response_type", "scope", "state", "code_challenge", "code_challenge_method", "aud",
                              "nonce") if len(args.getlist(n)) > 1]
    if duplicated:
        request.error = OAuthError("invalid_request", f"{duplicated[0]} is given more than once.")
    elif args.get("response_type") != "code":
        request.error = OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    elif GrantType.AUTHORIZATION_CODE.value not in client.grant_types:
        request.error = OAuthError("unauthorized_client", "This client may not use the authorization code grant.")
    elif args.get("code_challenge_method") != "S256":
        request.error = OAuthError("invalid_request", "PKCE is required, with code_challenge_method=S256.")
    elif not _CHALLENGE.match(args.get("code_challenge") or ""):
        request.error = OAuthError("invalid_request", "code_challenge must be BASE64URL(SHA-256(code_verifier)).")
    elif len(args.get("nonce") or "") > 255:
        request.error = OAuthError("invalid_request", "nonce is too long (at most 255 characters).")
    else:
        request.code_challenge = args["code_challenge"]
        request.nonce = args.get("nonce") or None
        try:
            _choose_scope(request, args, user)
        except OAuthError as error:
            request.error = error
    return request


def _choose_scope(request: AuthorizationRequest, args, user: User) -> None:
    requested = args.get("scope")
    try:
        request.scope = scopes.grantable(requested, request.client.allowed_scopes,
                                         context=scope_contexts(user, requested))
    except scopes.ScopeError as error:
        hint = (" (patient/ scopes for a clinician come with launch/patient: the patient is chosen at sign-in)"
                if user.role is not Role.PATIENT and "patient/" in (requested or "") else "")
        raise OAuthError("invalid_scope", f"{error}{hint}.") from None
    if not request.scope:
        raise OAuthError("invalid_scope", "No scope this client may ask of you was requested.")
    if request.launch_patient and user.role not in (Role.PATIENT, Role.DOCTOR):
        raise OAuthError("invalid_scope", "launch/patient: only patients and doctors open a patient's record.")
    request.audience = _audience(args, request.scope)
    request.pick_patient = request.launch_patient and user.role is Role.DOCTOR
    request.described = scopes.describe(request.scope, chosen_patient=request.pick_patient)


def approve(request: AuthorizationRequest, user: User, patient_id: int | None = None) -> str:
    """The person allowed the client: their grant (created, or the existing one with the new scope) and a
    single-use code; the address to send the browser to. `patient_id`: the patient a clinician picked for a
    `launch/patient` request (the caller asked the policy); a patient's launch is about themselves."""
    if request.launch_patient and user.role is Role.PATIENT:
        patient_id = user.id
    if request.pick_patient and patient_id is None:
        raise ValueError("a clinician's launch/patient needs the picked patient")
    grant = db.session.scalar(sa.select(OAuthGrant).where(
        OAuthGrant.client_pk == request.client.id, OAuthGrant.user_id == user.id,
        OAuthGrant.revoked_at.is_(None)).order_by(OAuthGrant.id.desc()).limit(1).with_for_update())
    if grant is None:
        grant = OAuthGrant(client_pk=request.client.id, user_id=user.id, scope=request.scope)
        db.session.add(grant)
        db.session.flush()
        emit("oauth.grant_created", "oauth_grant", grant.id, {"client_id": request.client.client_id,
                                                             "scope": request.scope}, patient_id=_patient_of(user))
    elif grant.scope != request.scope:
        grant.scope = request.scope
    code = secrets.token_urlsafe(32)
    db.session.add(OAuthAuthorizationCode(
        code_hash=digest(code), client_pk=request.client.id, user_id=user.id, redirect_uri=request.redirect_uri,
        scope=request.scope, code_challenge=request.code_challenge, code_challenge_method="S256",
        nonce=request.nonce, audience=request.audience,
        launch_patient_id=patient_id if request.launch_patient else None,
        expires_at=utcnow() + timedelta(seconds=CODE_SECONDS)))
    db.session.flush()
    return request.redirect(code=code)


def deny(request: AuthorizationRequest) -> str:
    return request.redirect(error="access_denied", error_description="The person did not allow access.")


def _patient_of(user: User) -> int | None:
    return user.id if user.role is Role.PATIENT else None


# --- the token endpoint --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """What a person's grant carries from the authorization request to every token it issues: the tokens'
    audience, the patient in context (SMART `launch/patient`) and the OpenID Connect nonce (first token only)."""
    audience: str
    patient_id: int | None = None
    nonce: str | None = None


def _access_token(user: User, client: OAuthClient, scope: str, grant: OAuthGrant | None, launch: Launch) -> str:
    claims = {"sub": str(user.id), "aud": launch.audience, "client_id": client.client_id, "scope": scope,
              "sv": user.session_version}
    if grant is not None:
        claims["gid"] = grant.id
    if launch.patient_id is not None:
        claims["patient"] = str(launch.patient_id)  # the token reaches this patient's data only
    return keys.sign_access_token(claims)


def fhir_user(user: User) -> str | None:
    """SMART's `fhirUser`: the person's own FHIR resource (a patient's Patient, a doctor's Practitioner)."""
    resource = {Role.PATIENT: "Patient", Role.DOCTOR: "Practitioner"}.get(user.role)
    return f"{bearer.fhir_audience()}/{resource}/{user.id}" if resource else None


def _id_token(user: User, client: OAuthClient, scope: str, launch: Launch) -> str:
    """The OpenID Connect id token of the code exchange (Core section 2): who signed in, for the client."""
    granted = set(scope.split())
    claims: dict = {"sub": str(user.id), "aud": client.client_id}
    if launch.nonce:
        claims["nonce"] = launch.nonce
    if "fhirUser" in granted and fhir_user(user):
        claims["fhirUser"] = fhir_user(user)
    if "profile" in granted or "fhirUser" in granted:
        claims["name"] = user.full_name
    return keys.sign_id_token(claims)


def _token_response(user: User, client: OAuthClient, scope: str, grant: OAuthGrant | None, grant_type: str,
                    *, refresh_scope: str | None = None, launch: Launch | None = None,
                    id_token: bool = False) -> dict:
    """The token answer; with a refresh token of `refresh_scope` when given (a person's grant only), the
    patient in context (SMART) and, for the code exchange with `openid`, an id token."""
    now = utcnow()
    launch = launch or Launch(bearer.api_audience())
    body = {"access_token": _access_token(user, client, scope, grant, launch), "token_type": "Bearer",
            "expires_in": current_app.config["HMS_ACCESS_TOKEN_SECONDS"], "scope": scope}
    if launch.patient_id is not None:
        body["patient"] = str(launch.patient_id)
    if id_token and "openid" in scope.split():
        body["id_token"] = _id_token(user, client, scope, launch)
    if refresh_scope is not None and grant is not None:
        token = secrets.token_urlsafe(32)
        db.session.add(OAuthRefreshToken(token_hash=digest(token), grant_id=grant.id, scope=refresh_scope,
                                         audience=launch.audience, launch_patient_id=launch.patient_id,
                                         expires_at=now + refresh_lifetime()))
        body["refresh_token"] = token
    client.last_used_at = now
    if grant is not None:
        grant.last_used_at = now
    db.session.flush()
    emit("oauth.token_issued", "oauth_client", client.client_id,
         {"grant_type": grant_type, "grant_id": grant.id if grant else None, "scope": scope,
          "refresh_token": "refresh_token" in body},
         actor={"id": user.id, "role": user.role.value, "client_id": client.client_id},
         patient_id=_patient_of(user))
    return body


def parameter(form, name: str, *, required: bool = True, limit: int = MAX_PARAMETER) -> str | None:
    """A parameter given at most once (RFC 6749 section 3.2), not empty when required, at most `limit` long."""
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"{name} is given more than once.")
    if not values or values[0] == "":
        if required:
            raise OAuthError("invalid_request", f"{name} is required.")
        return None
    if len(values[0]) > limit:
        raise OAuthError("invalid_request", f"{name} is too long.")
    return values[0]


def _allows(client: OAuthClient, grant_type: GrantType) -> None:
    if grant_type.value not in client.grant_types:
        raise OAuthError("unauthorized_client", f"This client may not use the {grant_type.value} grant.")


def issue_token(client: OAuthClient, form) -> dict:
    """The answer of the token endpoint for an authenticated client (RFC 6749 sections 4.1.3, 4.4, 6)."""
    grant_type = parameter(form, "grant_type")
    if grant_type == GrantType.AUTHORIZATION_CODE:
        return exchange_code(client, form)
    if grant_type == GrantType.CLIENT_CREDENTIALS:
        return client_credentials(client, form)
    if grant_type == GrantType.REFRESH_TOKEN:
        return refresh(client, form)
    raise OAuthError("unsupported_grant_type", "Use authorization_code, client_credentials or refresh_token.")


def _pkce_matches(verifier: str, challenge: str) -> bool:
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(computed, challenge)


def exchange_code(client: OAuthClient, form) -> dict:
    _allows(client, GrantType.AUTHORIZATION_CODE)
    code_value = parameter(form, "code")
    redirect_uri = parameter(form, "redirect_uri")
    verifier = parameter(form, "code_verifier", required=False)
    if verifier is None:
        raise OAuthError("invalid_request", "code_verifier is required (PKCE).")
    if not _VERIFIER.match(verifier):
        raise OAuthError("invalid_grant", "The code_verifier is malformed.")
    code = db.session.scalar(sa.select(OAuthAuthorizationCode).where(
        OAuthAuthorizationCode.code_hash == digest(code_value)).with_for_update())
    if code is None or code.client_pk != client.id:
        raise OAuthError("invalid_grant", "The authorization code is unknown or was issued to another client.")
    grant = db.session.scalar(sa.select(OAuthGrant).where(
        OAuthGrant.client_pk == client.id, OAuthGrant.user_id == code.user_id,
        OAuthGrant.revoked_at.is_(None)).order_by(OAuthGrant.id.desc()).limit(1).with_for_update())
    if code.used_at is not None:
        # RFC 6749 section 4.1.2: a code used twice revokes what it issued (the grant, with its tokens).
        if grant is not None and grant.created_at <= code.used_at:
            revoke_grant(grant, "code_reuse")
            _keep_despite_error()
        raise OAuthError("invalid_grant", "The authorization code was already used.")
    if code.expires_at <= utcnow():
        raise OAuthError("invalid_grant", "The authorization code has expired.")
    if code.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri is not the one of the authorization request.")
    if code.code_challenge_method != "S256" or not _pkce_matches(verifier, code.code_challenge):
        raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
    code.used_at = utcnow()
    user = db.session.get(User, code.user_id)
    if grant is None or user is None or not user.active:
        raise OAuthError("invalid_grant", "The person's consent was revoked.")
    refresh_allowed = (GrantType.REFRESH_TOKEN.value in client.grant_types
                       and "offline_access" in code.scope.split())
    launch = Launch(code.audience or bearer.api_audience(), code.launch_patient_id, code.nonce)
    return _token_response(user, client, code.scope, grant, GrantType.AUTHORIZATION_CODE,
                           refresh_scope=code.scope if refresh_allowed else None, launch=launch, id_token=True)


def client_credentials(client: OAuthClient, form) -> dict:
    if client.kind is not ClientKind.CONFIDENTIAL:
        raise OAuthError("unauthorized_client", "Only a confidential client may use client credentials.")
    _allows(client, GrantType.CLIENT_CREDENTIALS)
    user = client.service_user
    if user is None or not user.active:
        raise OAuthError("unauthorized_client", "This client has no active service account.")
    try:
        scope = scopes.grantable(parameter(form, "scope", required=False), client.allowed_scopes, context="system")
    except scopes.ScopeError as error:
        raise OAuthError("invalid_scope", str(error)) from None
    if "offline_access" in scope.split():
        raise OAuthError("invalid_scope", "Client credentials have no refresh token (offline_access).")
    if not scope:
        raise OAuthError("invalid_scope", "This client may ask for no system/ scope.")
    return _token_response(user, client, scope, None, GrantType.CLIENT_CREDENTIALS)


def _keep_despite_error() -> None:
    from flask import has_request_context

    if has_request_context():
        from app.web.unit_of_work import keep_despite_error

        keep_despite_error()


def refresh(client: OAuthClient, form) -> dict:
    """Rotate a refresh token (RFC 6749 section 6; OAuth 2.0 Security BCP 4.14.2): the old one is marked used,
    a new one of the same grant issued. A used one presented again revokes the whole grant (committed although
    the answer is an error)."""
    _allows(client, GrantType.REFRESH_TOKEN)
    value = parameter(form, "refresh_token")
    requested = parameter(form, "scope", required=False)
    token = db.session.scalar(sa.select(OAuthRefreshToken).where(
        OAuthRefreshToken.token_hash == digest(value)).with_for_update())
    if token is None:
        raise OAuthError("invalid_grant", "The refresh token is unknown.")
    grant = db.session.get(OAuthGrant, token.grant_id, with_for_update=True, populate_existing=True)
    if grant.client_pk != client.id:
        raise OAuthError("invalid_grant", "The refresh token was issued to another client.")
    if grant.revoked_at is not None:
        raise OAuthError("invalid_grant", "The refresh token was revoked.")
    if token.used_at is not None:
        revoke_grant(grant, "refresh_reuse")
        emit("oauth.refresh_reuse_detected", "oauth_grant", grant.id,
             {"client_id": client.client_id, "refresh_token_id": token.id}, outcome="denied",
             actor={"id": grant.user_id, "role": grant.user.role.value, "client_id": client.client_id},
             patient_id=_patient_of(grant.user))
        _keep_despite_error()
        raise OAuthError("invalid_grant", "The refresh token was already used; the grant is revoked.")
    if token.expires_at <= utcnow():
        raise OAuthError("invalid_grant", "The refresh token has expired.")
    user = grant.user
    if not user.active:
        raise OAuthError("invalid_grant", "The person's account is deactivated.")
    if not _covers(grant.scope, token.scope):
        raise OAuthError("invalid_grant", "The person has since allowed less than this refresh token holds.")
    scope = token.scope
    if requested is not None:
        try:
            narrowed = _covers(token.scope, requested)
        except scopes.ScopeError as error:
            raise OAuthError("invalid_scope", str(error)) from None
        if not narrowed:
            raise OAuthError("invalid_scope", "A refresh may narrow the scope, never widen it.")
        scope = scopes.validate(requested)
    token.used_at = utcnow()
    # The new refresh token keeps the old one's scope (RFC 6749 section 6), whatever the access token narrowed.
    launch = Launch(token.audience or bearer.api_audience(), token.launch_patient_id)
    return _token_response(user, client, scope, grant, GrantType.REFRESH_TOKEN, refresh_scope=token.scope,
                           launch=launch)


def _covers(held: str, wanted: str) -> bool:
    """Does the scope string `held` allow everything `wanted` asks? (ScopeError for a malformed `wanted`.)"""
    wanted_scopes, wanted_others = scopes.parse_all(wanted)
    held_scopes, held_others = scopes.parse_all(held)
    return wanted_others <= held_others and all(any(h.covers(w) for h in held_scopes) for w in wanted_scopes)


# --- grants: connected apps, revocation (RFC 7009) and introspection (RFC 7662) --------------------------------

def revoke_grant(grant: OAuthGrant, reason: str) -> None:
    """Stop a grant: its refresh tokens are refused, and its access tokens (they name it, `gid`) at once."""
    if grant.revoked_at is not None:
        return
    grant.revoked_at = utcnow()
    grant.revoked_reason = reason
    db.session.flush()
    emit("oauth.grant_revoked", "oauth_grant", grant.id, {"client_id": grant.client.client_id, "reason": reason},
         patient_id=_patient_of(grant.user))


def connected_apps(user: User) -> list[OAuthGrant]:
    return list(db.session.scalars(
        sa.select(OAuthGrant).join(OAuthGrant.client)
        .where(OAuthGrant.user_id == user.id, OAuthGrant.revoked_at.is_(None))
        .options(sa.orm.contains_eager(OAuthGrant.client))
        .order_by(OAuthGrant.created_at.desc(), OAuthGrant.id.desc())))


def grant_of(user: User, grant_id: int) -> OAuthGrant | None:
    """The person's own unrevoked grant, or None (someone else's is not found either)."""
    return db.session.scalar(sa.select(OAuthGrant).where(
        OAuthGrant.id == grant_id, OAuthGrant.user_id == user.id, OAuthGrant.revoked_at.is_(None)))


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def revoke_token(client: OAuthClient, token: str, hint: str | None) -> None:
    """RFC 7009: a refresh token revokes its grant; an access token is denied by its `jti` until it expires. An
    unknown token, or one of another client, changes nothing (the answer is the same 200)."""
    if hint not in (None, "access_token", "refresh_token"):
        raise OAuthError("unsupported_token_type", "token_type_hint is access_token or refresh_token.")
    if not _looks_like_jwt(token):
        row = db.session.scalar(sa.select(OAuthRefreshToken).where(OAuthRefreshToken.token_hash == digest(token)))
        if row is not None and row.grant.client_pk == client.id:
            revoke_grant(row.grant, "revoked_by_client")
        return
    try:
        claims = keys.verify_access_token(token, audience=bearer.audiences())
    except keys.InvalidToken:
        return  # expired or never ours: nothing to revoke
    if claims.get("client_id") != client.client_id or not isinstance(claims.get("jti"), str):
        return
    jti = claims["jti"][:64]
    if db.session.get(RevokedAccessToken, jti) is None:
        try:
            with db.session.begin_nested():  # revoked twice at once: the second finds it done
                db.session.add(RevokedAccessToken(jti=jti, expires_at=_from_timestamp(claims["exp"])))
        except IntegrityError:
            pass
        db.session.execute(sa.delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < utcnow()))
        db.session.flush()


def _from_timestamp(value: int | float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value, UTC)


def introspect(client: OAuthClient, token: str) -> dict:
    """RFC 7662, for confidential clients: the claims of a token issued to the asking client while it is active;
    anything else (revoked, expired, invalid, another client's) is only `active: false`."""
    if client.kind is not ClientKind.CONFIDENTIAL:
        raise invalid_client("Introspection is for confidential clients.")
    if _looks_like_jwt(token):
        try:
            found = bearer.authenticate("Bearer " + token, audience=bearer.audiences())
        except bearer.BearerError:
            return {"active": False}
        if found.client.id != client.id:
            return {"active": False}
        claims = found.claims
        return {"active": True, "token_type": "Bearer", "scope": found.scope, "client_id": found.client.client_id,
                "sub": claims["sub"], "aud": claims["aud"], "iss": claims["iss"], "exp": claims["exp"],
                "iat": claims["iat"], "jti": claims["jti"], "username": found.user.email,
                **({"patient": claims["patient"]} if "patient" in claims else {})}
    row = db.session.scalar(sa.select(OAuthRefreshToken).where(OAuthRefreshToken.token_hash == digest(token)))
    if (row is None or row.grant.client_pk != client.id or row.used_at is not None or row.expires_at <= utcnow()
            or row.grant.revoked_at is not None
            or not row.grant.user.active or not row.grant.client.active):
        return {"active": False}
    return {"active": True, "scope": row.scope,
            "client_id": row.grant.client.client_id, "sub": str(row.grant.user_id),
            "exp": int(row.expires_at.timestamp()), "iat": int(row.issued_at.timestamp())}
