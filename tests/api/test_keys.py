"""The access tokens' signing keys (`app/oauth/keys.py`) and the discovery documents that publish them."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from app import create_app
from app.config import ConfigError, load_config
from app.oauth import keys
from app.oauth.keys import DEV_KEY_FILE, InvalidToken, load_keys, sign_access_token, verify_access_token
from app.timeutil import utcnow

AUDIENCE = "https://hms.example/api"
CLAIMS = {"sub": "42", "aud": AUDIENCE, "client_id": "portal", "scope": "appointment.read"}


def new_pem() -> str:
    return ECKey.generate_key("P-256").as_pem(private=True).decode()


def kid_of(pem: str) -> str:
    return ECKey.import_key(pem[pem.index("-----BEGIN"):]).thumbprint()


def keyed_app(*pems: str):
    return create_app({"TESTING": True, "HMS_RELAY_IN_PROCESS": False, "HMS_JWT_PRIVATE_KEYS": "".join(pems)})


@pytest.fixture(scope="module")
def old_pem() -> str:
    return new_pem()


@pytest.fixture(scope="module")
def current_pem() -> str:
    return new_pem()


@pytest.fixture
def rotated(app, current_pem, old_pem):
    """An application in the middle of a rotation: the current key signs, the old one still verifies."""
    return keyed_app(current_pem, old_pem)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refusal(token: str, audience: str = AUDIENCE) -> str:
    with pytest.raises(InvalidToken) as refused:
        verify_access_token(token, audience=audience)
    return refused.value.reason


def test_a_signed_token_verifies_and_carries_the_rfc_9068_header_and_claims(rotated, current_pem):
    with rotated.app_context():
        token = sign_access_token(CLAIMS)
        claims = verify_access_token(token, audience=AUDIENCE)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": kid_of(current_pem)}
    assert claims.items() >= CLAIMS.items()
    assert claims["iss"] == rotated.config["HMS_PUBLIC_URL"].rstrip("/")
    assert claims["exp"] - claims["iat"] == rotated.config["HMS_ACCESS_TOKEN_SECONDS"]
    assert claims["jti"]


def test_a_token_needs_a_subject_an_audience_and_a_client(rotated):
    with rotated.app_context(), pytest.raises(ValueError, match="client_id"):
        sign_access_token({"sub": "42", "aud": AUDIENCE})


def test_expired_wrong_audience_wrong_issuer_and_future_tokens_are_refused(rotated):
    now = int(utcnow().timestamp())
    with rotated.app_context():
        assert refusal(sign_access_token({**CLAIMS, "iat": now - 700, "exp": now - 100})) == "expired"
        assert refusal(sign_access_token(CLAIMS), audience="https://other.example/api") == "audience"
        assert refusal(sign_access_token({**CLAIMS, "iss": "https://evil.example"})) == "issuer"
        assert refusal(sign_access_token({**CLAIMS, "iat": now + 300})) == "not_yet_valid"


def test_a_tampered_payload_is_refused(rotated):
    with rotated.app_context():
        header, payload, signature = sign_access_token(CLAIMS).split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged = f"{header}.{b64({**claims, 'sub': '1', 'scope': 'record.write'})}.{signature}"
        assert refusal(forged) == "signature"


def test_unsigned_and_symmetric_tokens_are_refused(rotated, current_pem):
    kid = kid_of(current_pem)
    with rotated.app_context():
        payload = sign_access_token(CLAIMS).split(".")[1]
        unsigned = f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{payload}."
        assert refusal(unsigned) == "algorithm"
        # HS256 "signed" with the public key's bytes: the classic key-confusion forgery.
        public = json.dumps(keys.jwks()["keys"][0]).encode()
        signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}.{payload}"
        mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        assert refusal(f"{signing_input}.{b64(mac)}") == "algorithm"


def test_a_token_without_the_access_token_type_is_refused(rotated, current_pem):
    key = ECKey.import_key(current_pem)
    with rotated.app_context():
        payload = verify_access_token(sign_access_token(CLAIMS), audience=AUDIENCE)
        token = jwt.encode({"alg": "ES256", "typ": "JWT", "kid": key.thumbprint()}, payload, key)
        assert refusal(token) == "type"


def test_unknown_keys_and_garbage_are_refused(rotated, current_pem):
    stranger = ECKey.generate_key("P-256")
    with rotated.app_context():
        payload = verify_access_token(sign_access_token(CLAIMS), audience=AUDIENCE)
        strangers = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": stranger.thumbprint()}, payload, stranger)
        assert refusal(strangers) == "unknown_key"
        # The stranger's signature under our kid: the kid is known, the signature is not ours.
        impostor = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid_of(current_pem)}, payload, stranger)
        assert refusal(impostor) == "signature"
        for garbage in ("", "abc", "a.b.c", "!!.!!.!!", f"{b64(b'[1]')}.{b64(b'{}')}.x"):
            assert refusal(garbage) == "malformed"


def test_a_token_of_the_old_key_verifies_while_it_is_configured_and_not_after(app, rotated, old_pem, current_pem):
    before_rotation = keyed_app(old_pem)
    with before_rotation.app_context():
        token = sign_access_token(CLAIMS)
    with rotated.app_context():
        assert verify_access_token(token, audience=AUDIENCE)["sub"] == "42"
    with keyed_app(current_pem).app_context():
        assert refusal(token) == "unknown_key"


def test_the_jwks_publishes_every_public_key_and_no_private_part(rotated, old_pem, current_pem):
    response = rotated.test_client().get("/.well-known/jwks.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    published = response.get_json()["keys"]
    assert [key["kid"] for key in published] == [kid_of(current_pem), kid_of(old_pem)]
    for key in published:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
        assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert ECKey.import_key(key).thumbprint() == key["kid"]


def test_keys_can_come_from_files(tmp_path, old_pem, current_pem):
    (tmp_path / "current.pem").write_text(current_pem)
    (tmp_path / "both.pem").write_text(current_pem + old_pem)
    from_paths = load_keys(f"{tmp_path / 'current.pem'}, {DEV_KEY_FILE}", env="test")
    assert [key.kid for key in from_paths.keys] == [kid_of(current_pem), kid_of(DEV_KEY_FILE.read_text())]
    from_one_file = load_keys(str(tmp_path / "both.pem"), env="production")
    assert [key.kid for key in from_one_file.keys] == [kid_of(current_pem), kid_of(old_pem)]


@pytest.mark.parametrize(("setting", "message"), [
    ("/nonexistent/key.pem", "cannot read"),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "no PEM private key"),
    (ECKey.generate_key("P-384").as_pem(private=True).decode(), "P-256"),
])
def test_a_broken_key_setting_stops_the_start(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_keys(setting, env="test")


def test_production_refuses_to_start_without_keys_or_with_the_development_key(monkeypatch, current_pem):
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.delenv("HMS_JWT_PRIVATE_KEYS", raising=False)
    with pytest.raises(ConfigError, match="HMS_JWT_PRIVATE_KEYS must be set"):
        load_config()
    with pytest.raises(ConfigError, match="HMS_JWT_PRIVATE_KEYS must be set"):
        load_keys(None, env="production")
    with pytest.raises(ConfigError, match="development key"):
        load_keys(current_pem + DEV_KEY_FILE.read_text(), env="production")
    monkeypatch.setenv("HMS_JWT_PRIVATE_KEYS", current_pem)
    assert load_config()["HMS_JWT_PRIVATE_KEYS"] == current_pem.strip()


def test_development_and_tests_sign_with_the_development_key(app):
    with app.app_context():
        assert [key["kid"] for key in keys.jwks()["keys"]] == [kid_of(DEV_KEY_FILE.read_text())]


def test_the_metadata_lists_only_endpoints_that_exist(rotated):
    client = rotated.test_client()
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    document = response.get_json()
    assert document["issuer"] == rotated.config["HMS_PUBLIC_URL"].rstrip("/")
    assert document["jwks_uri"] == document["issuer"] + "/.well-known/jwks.json"
    assert document["response_types_supported"] == ["code"]  # required by RFC 8414
    adapter = rotated.url_map.bind("localhost")
    methods = {"token_endpoint": "POST", "revocation_endpoint": "POST", "introspection_endpoint": "POST"}
    for name, url in document.items():
        if name.endswith(("_endpoint", "_uri")):
            assert url.startswith(document["issuer"] + "/")
            path = urlsplit(url).path
            adapter.match(path, method=methods.get(name, "GET"))  # NotFound or MethodNotAllowed for an invented one
            if name == "jwks_uri":
                assert client.get(path).status_code == 200
