"""A local stand-in for Twilio's Messages API, for tests and for developers running HMS without a carrier.

    python -m devtools.sms_gateway --port 5002 --dir var/sms
"""
from __future__ import annotations

import argparse
import base64
import binascii
import email.utils
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socketserver
import sys
import threading
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

DEV_ACCOUNT_SID = "ACdev00000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-token"
API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages\.json$")
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
            "¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """How many SMS parts a carrier would split `body` into (GSM-7 when it fits, else UCS-2)."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = sum(2 if ord(c) > 0xFFFF else 1 for c in body), 70, 67
    return 1 if units <= single else -(-units // multi)


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str
    raw_body: str | None


class _Reply(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # stop() joins the handler threads, so none outlives the gateway
    gateway: SmsGatewayServer

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup of the host
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("SMS gateway: error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "HMS-SMS-Gateway/1.0"
    timeout = 30

    def do_POST(self) -> None:
        self._serve(send=True)

    def do_GET(self) -> None:
        self._serve(send=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("SMS gateway %s - %s", self.address_string(), format % args)

    def _serve(self, *, send: bool) -> None:
        gateway = self.server.gateway
        form = self._read_form() if send else {}
        if send:
            gateway._before_send()
            failure = gateway._take_failure()
            if failure is not None:
                if failure.raw_body is not None:
                    self._send(failure.status, failure.raw_body.encode(), "text/html; charset=utf-8")
                else:
                    self._send_error(_Reply(failure.status, failure.code, failure.message))
                return
        try:
            account_sid = self._authorize()
            if send:
                self._send_json(HTTPStatus.CREATED, gateway._accept(account_sid, form))
            else:
                self._send_json(HTTPStatus.OK, gateway._listing(account_sid))
        except _Reply as reply:
            self._send_error(reply)

    def _authorize(self) -> str:
        gateway = self.server.gateway
        path = urllib.parse.urlsplit(self.path).path
        match = _MESSAGES_PATH.match(path)
        if not match:
            raise _Reply(404, 20404, f"The requested resource {path} was not found")
        if not gateway._authenticated(self.headers.get("Authorization", "")):
            raise _Reply(401, 20003, "Authenticate")
        account_sid = urllib.parse.unquote(match.group(1))
        if account_sid != gateway.account_sid:
            raise _Reply(404, 20404, f"The requested resource {path} was not found")
        return account_sid

    def _read_form(self) -> dict[str, str]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        return {key: values[0] for key, values in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def _send_error(self, reply: _Reply) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if reply.status == 401 else {}
        self._send_json(reply.status, {"code": reply.code, "message": reply.message,
                                       "more_info": f"https://www.twilio.com/docs/errors/{reply.code}",
                                       "status": reply.status}, headers)

    def _send_json(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json; charset=utf-8", headers)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class SmsGatewayServer:
    """Twilio's `Messages.json` endpoint on loopback, keeping what it accepts in memory (and in `outbox_dir`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, account_sid: str = DEV_ACCOUNT_SID,
                 auth_token: str = DEV_AUTH_TOKEN, outbox_dir: Path | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.outbox_dir = Path(outbox_dir) if outbox_dir is not None else None
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._failures: deque[_Failure] = deque()
        self._stalls: deque[float] = deque()
        self._released = threading.Event()
        self._thread: threading.Thread | None = None
        self._httpd: _Server | None = None
        self._address = (host, port)

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SMS gateway not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return [dict(message) for message in self._messages]

    def start(self) -> SmsGatewayServer:
        if self._httpd is not None:
            raise RuntimeError("SMS gateway already started")
        if self.outbox_dir is not None:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
        self._released.clear()
        self._httpd = _Server(self._address, _Handler)
        self._httpd.gateway = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sms-gateway", daemon=True)
        self._thread.start()
        log.info("SMS gateway listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; a stalled request is released at once, and every handler thread is joined."""
        self._released.set()
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        thread.join()
        httpd.server_close()

    def __enter__(self) -> SmsGatewayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, count: int = 1, status: int = 503, code: int = 20500, message: str = "Service unavailable",
                  *, raw_body: str | None = None) -> None:
        """Make the next `count` sends fail with a Twilio error reply, or with `raw_body` sent as HTML instead."""
        with self._lock:
            self._failures.extend(_Failure(status, code, message, raw_body) for _ in range(count))

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Make the next `count` sends wait `seconds` (cut short by stop()) before they are handled."""
        with self._lock:
            self._stalls.extend(seconds for _ in range(count))

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._failures.clear()
            self._stalls.clear()

    def _before_send(self) -> None:
        with self._lock:
            seconds = self._stalls.popleft() if self._stalls else 0.0
        if seconds > 0:
            self._released.wait(seconds)

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), f"{self.account_sid}:{self.auth_token}".encode())

    def _accept(self, account_sid: str, form: dict[str, str]) -> dict[str, Any]:
        to, sender, body = form.get("To", "").strip(), form.get("From", "").strip(), form.get("Body", "")
        if not to:
            raise _Reply(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise _Reply(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            raise _Reply(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise _Reply(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            raise _Reply(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = "SM" + secrets.token_hex(16)
        now = email.utils.format_datetime(datetime.now(timezone.utc).replace(microsecond=0))
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
        message = {
            "sid": sid, "account_sid": account_sid, "to": to, "from": sender, "body": body, "status": "queued",
            "direction": "outbound-api", "num_segments": str(num_segments(body)), "num_media": "0",
            "date_created": now, "date_updated": now, "date_sent": None, "api_version": API_VERSION,
            "error_code": None, "error_message": None, "messaging_service_sid": None, "price": None,
            "price_unit": "USD", "uri": uri, "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }
        with self._lock:
            self._messages.append(message)
        if self.outbox_dir is not None:
            self._write_outbox(message)
        log.info("SMS gateway accepted %s to %s", sid, to)
        return message

    def _write_outbox(self, message: dict[str, Any]) -> None:
        assert self.outbox_dir is not None
        target = self.outbox_dir / f"{message['sid']}.json"
        partial = target.with_suffix(".json.part")
        partial.write_text(json.dumps(message, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(partial, target)

    def _listing(self, account_sid: str) -> dict[str, Any]:
        messages = list(reversed(self.messages))
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        return {"messages": messages, "page": 0, "page_size": len(messages), "uri": uri,
                "first_page_uri": uri, "next_page_uri": None, "previous_page_uri": None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sms_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--dir", type=Path, default=None, help="also write each accepted message here as <sid>.json")
    parser.add_argument("--account-sid", default=os.environ.get("SMS_ACCOUNT_SID") or DEV_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=os.environ.get("SMS_AUTH_TOKEN") or DEV_AUTH_TOKEN)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    gateway = SmsGatewayServer(args.host, args.port, args.account_sid, args.auth_token, args.dir)
    try:
        gateway.start()
    except OSError as error:
        print(f"sms_gateway: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        print(f"SMS gateway on {gateway.url} (account {args.account_sid}"
              + (f", outbox {args.dir}" if args.dir else "") + ")", flush=True)
        stopping.wait()
    finally:
        gateway.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
