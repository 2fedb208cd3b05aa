"""Email through Flask-Mail, with a connect timeout (Flask-Mail's SMTP connection has none)."""
from __future__ import annotations

import smtplib

from flask import current_app
from flask_mail import Connection, Mail, Message


class _TimedConnection(Connection):
    def configure_host(self):
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=current_app.config["MAIL_TIMEOUT_SECONDS"])
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def __exit__(self, exc_type, exc_value, tb) -> None:
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):
                self.host.close()


class HmsMail(Mail):
    def connect(self) -> _TimedConnection:
        return _TimedConnection(current_app.extensions["mail"])


def build_message(*, recipient: str, subject: str, body_text: str, body_html: str | None, message_id: str) -> Message:
    message = Message(subject=subject, recipients=[recipient], body=body_text, html=body_html)
    message.msgId = message_id
    return message


def is_retryable(error: Exception) -> bool:
    """4xx answers and lost connections are worth retrying; 5xx answers (bad address, …) are not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, (smtplib.SMTPException, OSError))
