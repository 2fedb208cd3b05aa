"""The FHIR R4 endpoint, `/fhir/R4`: read and search over the same domain services and access policy as the
pages and the API (see docs/fhir.md).

Only a bearer token authorizes it (the cookie session is neither read nor written under `/fhir/`, see
`app.api.CookieSessionsOutsideTheApi`), checked by the API's door (`app.api.auth`): a token for the FHIR base
URL (`app.oauth.bearer.fhir_audience`) or for the API. `metadata` is public. Every error is an OperationOutcome
(`app.fhir.outcomes`).
"""
from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, Flask, current_app, request
from werkzeug.wrappers import Response

from app.extensions import csrf

bp = Blueprint("fhir", __name__, url_prefix="/fhir/R4")
csrf.exempt(bp)

_PUBLIC = SimpleNamespace(public=True)
_BEARER = SimpleNamespace(public=False)


@bp.before_request
def before_interaction() -> None:
    from app.api import auth
    from app.oauth.bearer import api_audience, fhir_audience

    public = getattr(current_app.view_functions.get(request.endpoint), "public", False)
    auth.admit(_PUBLIC if public else _BEARER, audience=(fhir_audience(), api_audience()))


@bp.after_request
def after_interaction(response: Response) -> Response:
    from app.api import ratelimit

    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("Authorization")
    return ratelimit.add_headers(response)


def init_app(app: Flask) -> None:
    from app.fhir import views

    app.url_map.converters["fhir_type"] = views.TypeConverter
    app.url_map.converters["fhir_id"] = views.IdConverter
    app.register_blueprint(bp)
