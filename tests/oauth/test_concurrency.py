"""Two requests at once with the same single-use credential, against the live (threaded) server: the row lock
lets one through, and the other is a reuse."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request

from app.extensions import db
from app.oauth.models import OAuthGrant
from tests.oauth.conftest import sign_in
from tests.oauth.helpers import authorize_url, consent, grant_id_of
from tests.oauth.tokens import REDIRECT_URI, pkce_pair


def _post_together(url: str, data: dict, times: int = 2) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(times)
    answers: list[tuple[int, dict]] = []

    def post() -> None:
        request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST")
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append((response.status, json.load(response)))
        except urllib.error.HTTPError as error:
            answers.append((error.code, json.load(error)))

    threads = [threading.Thread(target=post) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(answers, key=lambda answer: answer[0])


def test_a_refresh_token_sent_twice_at_once_is_used_once_and_the_second_is_a_reuse(app, live_server, create_patient,
                                                                                   public_app, code_flow):
    body = code_flow(create_patient(), public_app)
    answers = _post_together(f"{live_server}/oauth/token", {
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": public_app.client_id})
    assert [status for status, _ in answers] == [200, 400]
    assert answers[1][1]["error"] == "invalid_grant"
    with app.app_context():
        grant = db.session.get(OAuthGrant, grant_id_of(body["access_token"]))
        assert grant.revoked_reason == "refresh_reuse"
        db.session.remove()


def test_a_code_sent_twice_at_once_issues_one_token(app, live_server, create_patient, public_app):
    patient = create_patient()
    client = sign_in(app, patient)
    verifier, challenge = pkce_pair()
    code = consent(client, authorize_url(public_app.client_id, challenge))["code"]
    answers = _post_together(f"{live_server}/oauth/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
        "client_id": public_app.client_id})
    assert [status for status, _ in answers] == [200, 400]
    assert answers[1][1]["error"] == "invalid_grant"
