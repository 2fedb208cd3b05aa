"""The development SMTP server: accepts every message and keeps each one as an .eml file a developer can open.

    python -m devtools.mailbox --port 1025 --dir var/mailbox

Any sender, any recipient and any AUTH login are accepted. Each file is the message as received, preceded by
X-Envelope-From and X-Envelope-To headers (the SMTP envelope, which shows Bcc recipients too).
"""
from __future__ import annotations

import argparse
import email
import email.policy
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from devtools.broker import free_port, port_is_free

_POLL_SECONDS = 0.02


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4.6 logs a deprecation notice of its own on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_DropLoginDataNotice())


def _accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=True)


class _SaveToDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last = datetime.min.replace(tzinfo=timezone.utc)

    def _arrival_stamp(self) -> str:
        """Strictly increasing per server, so that sorting file names gives the arrival order."""
        now = datetime.now(timezone.utc)
        self._last = now if now > self._last else self._last + timedelta(microseconds=1)
        return self._last.strftime("%Y%m%dT%H%M%S.%fZ")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        recipients = ",\r\n ".join(f"<{r}>" for r in envelope.rcpt_tos)
        headers = f"X-Envelope-From: <{envelope.mail_from or ''}>\r\nX-Envelope-To: {recipients}\r\n".encode()
        name = f"{self._arrival_stamp()}-{uuid.uuid4().hex}.eml"
        temporary = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as out:
                out.write(headers)
                out.write(content)
            os.replace(temporary, self.directory / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            return f"451 4.3.0 could not store the message: {error.strerror}"
        return "250 OK"


class Mailbox:
    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        self._handler = _SaveToDirectory(self.directory)
        self._controller: Controller | None = None

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError(f"mailbox already running on {self.host}:{self.port}")
        if not port_is_free(self.host, self.port):
            raise OSError(f"port {self.port} on {self.host} is already in use")
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(self._handler, hostname=self.host, port=self.port,
                                server_hostname="localhost", authenticator=_accept_any_login,
                                auth_require_tls=False)
        try:
            controller.start()
        except BaseException:
            # aiosmtpd 1.4.6 leaves its event loop open when the server fails to start.
            controller.stop(no_assert=True)
            if not controller.loop.is_closed():
                controller.loop.close()
            raise
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def is_running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _parse(path: Path) -> EmailMessage | None:
    """The message, or None if someone deleted the file meanwhile."""
    try:
        with open(path, "rb") as file:
            return email.message_from_binary_file(file, policy=email.policy.default)  # type: ignore[return-value]
    except FileNotFoundError:
        return None


def read_mailbox(directory: Path) -> list[EmailMessage]:
    """Every stored message, oldest first."""
    return [m for m in map(_parse, sorted(Path(directory).glob("*.eml"))) if m is not None]


def wait_for_messages(directory: Path, count: int, timeout: float = 10.0,
                      predicate: Callable[[EmailMessage], bool] | None = None) -> list[EmailMessage]:
    """The stored messages (oldest first) matching `predicate`, once there are at least `count` of them."""
    directory = Path(directory)
    parsed: dict[Path, EmailMessage | None] = {}
    deadline = time.monotonic() + timeout
    while True:
        paths = sorted(directory.glob("*.eml"))
        for path in paths:
            if path not in parsed:
                parsed[path] = _parse(path)
        stored = [m for m in (parsed[path] for path in paths) if m is not None]
        matching = [m for m in stored if predicate is None or predicate(m)]
        if len(matching) >= count:
            return matching
        if time.monotonic() >= deadline:
            what = "messages" if predicate is None else "messages matching the predicate"
            raise TimeoutError(f"expected at least {count} {what} in {directory} within {timeout} s; "
                               f"found {len(matching)} (of {len(stored)} stored)")
        time.sleep(_POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.mailbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("var/mailbox"), dest="directory")
    args = parser.parse_args(argv)

    signalled: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _: signalled.append(signum))
    mailbox = Mailbox(args.directory, args.host, args.port)
    try:
        mailbox.start()
    except OSError as error:
        print(f"mailbox did not start: {error}", file=sys.stderr)
        return 1
    try:
        print(f"mailbox listening on smtp://{mailbox.host}:{mailbox.port}, keeping messages in {mailbox.directory}",
              flush=True)
        while not signalled:
            time.sleep(0.1)
    finally:
        mailbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
