"""The SMS client against the local Twilio-compatible gateway, over real HTTP on loopback."""
from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config import ConfigError
from app.notifications.sms import SmsClient, SmsError, SmsReceipt, SmsSettings, sms_settings_from_config
from devtools.sms_gateway import SmsGatewayServer, num_segments

ROOT = Path(__file__).resolve().parent.parent
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "s3cret-token"
FROM = "+12025550100"
TO = "+12025550143"

MakeClient = Callable[..., SmsClient]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway() -> Iterator[SmsGatewayServer]:
    server = SmsGatewayServer(account_sid=SID, auth_token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def make_client(gateway: SmsGatewayServer) -> MakeClient:
    def make(*, base_url: str | None = None, auth_token: str = TOKEN, from_number: str = FROM,
             timeout: float = 5.0) -> SmsClient:
        return SmsClient(SmsSettings(base_url=base_url or gateway.url, account_sid=SID, auth_token=auth_token,
                                     from_number=from_number, timeout=timeout))
    return make


def _send_error(client: SmsClient, to: str = TO, body: str = "Your appointment is tomorrow at 9:00.") -> SmsError:
    with pytest.raises(SmsError) as caught:
        client.send(to, body)
    return caught.value


def test_a_valid_message_is_accepted_and_recorded(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    receipt = make_client().send(TO, "Your appointment is tomorrow at 9:00.")

    assert isinstance(receipt, SmsReceipt)
    assert receipt.status == "queued"
    assert receipt.sid.startswith("SM") and len(receipt.sid) == 34
    [message] = gateway.messages
    assert message["sid"] == receipt.sid
    assert (message["to"], message["from"], message["body"]) == (TO, FROM, "Your appointment is tomorrow at 9:00.")
    assert message["date_created"].endswith("+0000")


def test_sent_messages_can_be_listed_by_a_developer(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    first = make_client().send(TO, "one")
    second = make_client().send("+447700900123", "two")
    request = urllib.request.Request(f"{gateway.url}/2010-04-01/Accounts/{SID}/Messages.json", headers={
        "Authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()})

    with urllib.request.urlopen(request, timeout=5) as response:
        listing = json.load(response)

    assert [m["sid"] for m in listing["messages"]] == [second.sid, first.sid]


def test_invalid_number_is_a_permanent_error(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    error = _send_error(make_client(), to="+1555")

    assert error.code == 21211
    assert error.status == 400
    assert not error.retryable
    assert "+1555" in error.message
    assert gateway.messages == []


def test_bad_credentials_are_a_permanent_error(make_client: MakeClient) -> None:
    error = _send_error(make_client(auth_token="wrong"))

    assert (error.code, error.status, error.retryable) == (20003, 401, False)
    assert error.message == "Authenticate"


def test_an_unknown_account_is_not_found(gateway: SmsGatewayServer) -> None:
    request = urllib.request.Request(
        f"{gateway.url}/2010-04-01/Accounts/ACother/Messages.json", data=b"To=%2B12025550143&From=x&Body=hi",
        headers={"Authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()})

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    with caught.value as reply:
        assert reply.code == 404
        assert json.load(reply)["code"] == 20404


def test_missing_sender_is_a_permanent_error(make_client: MakeClient) -> None:
    error = _send_error(make_client(from_number=""))

    assert (error.code, error.status, error.retryable) == (21603, 400, False)


def test_missing_body_is_a_permanent_error(make_client: MakeClient) -> None:
    error = _send_error(make_client(), body="")

    assert (error.code, error.status, error.retryable) == (21602, 400, False)


def test_body_over_1600_characters_is_a_permanent_error(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    make_client().send(TO, "x" * 1600)
    error = _send_error(make_client(), body="x" * 1601)

    assert (error.code, error.status, error.retryable) == (21617, 400, False)
    assert len(gateway.messages) == 1


def test_an_unavailable_gateway_is_retryable_until_it_recovers(gateway: SmsGatewayServer,
                                                               make_client: MakeClient) -> None:
    gateway.fail_next(2)
    client = make_client()

    errors = [_send_error(client), _send_error(client)]

    assert [(e.status, e.code, e.retryable) for e in errors] == [(503, 20500, True)] * 2
    assert client.send(TO, "third time lucky").status == "queued"


def test_rate_limiting_is_retryable(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    gateway.fail_next(1, status=429, code=20429, message="Too Many Requests")

    error = _send_error(make_client())

    assert (error.status, error.code, error.retryable) == (429, 20429, True)
    assert error.message == "Too Many Requests"


def test_a_refused_connection_is_retryable() -> None:
    stopped = SmsGatewayServer(account_sid=SID, auth_token=TOKEN).start()
    url = stopped.url
    stopped.stop()
    client = SmsClient(SmsSettings(base_url=url, account_sid=SID, auth_token=TOKEN, from_number=FROM, timeout=5))

    error = _send_error(client)

    assert error.retryable
    assert (error.status, error.code) == (None, None)
    assert url in error.message


def test_a_stalled_gateway_times_out_and_is_retryable(gateway: SmsGatewayServer, make_client: MakeClient) -> None:
    gateway.stall_next(30)
    started = time.monotonic()

    error = _send_error(make_client(timeout=0.2))

    assert error.retryable
    assert error.status is None
    assert "timed out" in error.message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("status", "raw_body", "retryable"), [
    (502, "<html><body>Bad Gateway</body></html>", True),
    (400, "", False),
    (500, "[1, 2, 3]", True),
])
def test_an_error_reply_that_is_not_twilio_json_still_gives_a_clear_error(
        gateway: SmsGatewayServer, make_client: MakeClient, status: int, raw_body: str, retryable: bool) -> None:
    gateway.fail_next(1, status=status, raw_body=raw_body)

    error = _send_error(make_client())

    assert (error.status, error.code, error.retryable) == (status, None, retryable)
    assert f"HTTP {status}" in error.message and "not Twilio JSON" in error.message


def test_an_unreadable_acceptance_is_an_error_that_is_not_retried(gateway: SmsGatewayServer,
                                                                   make_client: MakeClient) -> None:
    gateway.fail_next(1, status=201, raw_body="OK")

    error = _send_error(make_client())

    assert (error.status, error.retryable) == (201, False)
    assert "'OK'" in error.message


def test_accepted_messages_are_written_to_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "sms"
    with SmsGatewayServer(account_sid=SID, auth_token=TOKEN, outbox_dir=outbox) as server:
        client = SmsClient(SmsSettings(server.url, SID, TOKEN, FROM))
        receipt = client.send(TO, "Lab results are ready.")

    written = json.loads((outbox / f"{receipt.sid}.json").read_text(encoding="utf-8"))
    assert (written["sid"], written["to"], written["from"], written["body"]) == (
        receipt.sid, TO, FROM, "Lab results are ready.")
    assert [p.name for p in outbox.iterdir()] == [f"{receipt.sid}.json"]


@pytest.mark.parametrize(("body", "segments"), [
    ("x" * 160, 1), ("x" * 161, 2), ("€" * 80, 1), ("é" * 160, 1), ("ж" * 70, 1), ("ж" * 71, 2),
])
def test_segments_are_counted_like_a_carrier(body: str, segments: int) -> None:
    assert num_segments(body) == segments


def test_no_gateway_url_means_sms_is_not_configured() -> None:
    assert sms_settings_from_config({}) is None
    assert sms_settings_from_config({"SMS_GATEWAY_URL": "", "SMS_ACCOUNT_SID": SID}) is None


def test_a_full_config_gives_settings() -> None:
    settings = sms_settings_from_config({
        "SMS_GATEWAY_URL": "http://127.0.0.1:5002/", "SMS_ACCOUNT_SID": SID, "SMS_AUTH_TOKEN": TOKEN,
        "SMS_FROM_NUMBER": FROM, "SMS_TIMEOUT_SECONDS": "2.5"})

    assert settings == SmsSettings(base_url="http://127.0.0.1:5002", account_sid=SID, auth_token=TOKEN,
                                   from_number=FROM, timeout=2.5)
    assert sms_settings_from_config({"SMS_GATEWAY_URL": "http://x", "SMS_ACCOUNT_SID": SID,
                                     "SMS_AUTH_TOKEN": TOKEN, "SMS_FROM_NUMBER": FROM}).timeout == 10.0


@pytest.mark.parametrize("config", [
    {"SMS_GATEWAY_URL": "http://x", "SMS_ACCOUNT_SID": SID, "SMS_FROM_NUMBER": FROM},
    {"SMS_GATEWAY_URL": "http://x", "SMS_ACCOUNT_SID": SID, "SMS_AUTH_TOKEN": TOKEN, "SMS_FROM_NUMBER": FROM,
     "SMS_TIMEOUT_SECONDS": "soon"},
])
def test_a_half_configured_gateway_is_refused(config: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        sms_settings_from_config(config)


def _wait_until_listening(proc: subprocess.Popen[str], port: int, deadline_seconds: float = 15) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"gateway exited with {proc.returncode}: {proc.communicate()}")
    pytest.fail(f"gateway did not listen on port {port} within {deadline_seconds}s")


def test_the_cli_serves_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "devtools.sms_gateway", "--port", str(port), "--dir", str(tmp_path),
               "--account-sid", SID, "--auth-token", TOKEN]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _wait_until_listening(proc, port)
            receipt = SmsClient(SmsSettings(f"http://127.0.0.1:{port}", SID, TOKEN, FROM)).send(TO, "hello")
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"http://127.0.0.1:{port}" in stdout
    assert (tmp_path / f"{receipt.sid}.json").is_file()
