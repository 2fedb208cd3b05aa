"""SMS through a gateway that speaks Twilio's Messages API (Twilio itself, or devtools.sms_gateway)."""
from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.config import ConfigError

_ACCEPTED = (200, 201)


@dataclass(frozen=True)
class SmsSettings:
    base_url: str
    account_sid: str
    auth_token: str
    from_number: str
    timeout: float = 10.0


def sms_settings_from_config(config: Mapping[str, Any]) -> SmsSettings | None:
    """The gateway settings in an app config, or None when no gateway is configured (SMS_GATEWAY_URL empty)."""
    base_url = str(config.get("SMS_GATEWAY_URL") or "").strip()
    if not base_url:
        return None
    values = {key: str(config.get(key) or "").strip()
              for key in ("SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN", "SMS_FROM_NUMBER")}
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise ConfigError(f"SMS_GATEWAY_URL is set but {', '.join(missing)} is not")
    raw_timeout = config.get("SMS_TIMEOUT_SECONDS")
    try:
        timeout = 10.0 if raw_timeout in (None, "") else float(raw_timeout)
    except (TypeError, ValueError):
        raise ConfigError(f"SMS_TIMEOUT_SECONDS must be a number of seconds, not {raw_timeout!r}") from None
    if timeout <= 0:
        raise ConfigError(f"SMS_TIMEOUT_SECONDS must be positive, not {raw_timeout!r}")
    return SmsSettings(base_url=base_url.rstrip("/"), account_sid=values["SMS_ACCOUNT_SID"],
                       auth_token=values["SMS_AUTH_TOKEN"], from_number=values["SMS_FROM_NUMBER"], timeout=timeout)


class SmsError(Exception):
    """A message the gateway did not accept; `retryable` says whether sending it again later may succeed."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable

    def __str__(self) -> str:
        details = [f"error {self.code}" if self.code is not None else "", f"HTTP {self.status}" if self.status else ""]
        details = [d for d in details if d]
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (f"SmsError({self.message!r}, code={self.code!r}, status={self.status!r}, "
                f"retryable={self.retryable!r})")


@dataclass(frozen=True)
class SmsReceipt:
    sid: str
    status: str


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


class SmsClient:
    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        sid = urllib.parse.quote(settings.account_sid, safe="")
        self._url = f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        credentials = f"{settings.account_sid}:{settings.auth_token}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")

    def send(self, to: str, body: str) -> SmsReceipt:
        """Hand one message to the gateway; raises SmsError when it is not accepted."""
        form = urllib.parse.urlencode({"To": to, "From": self.settings.from_number, "Body": body}).encode()
        request = urllib.request.Request(self._url, data=form, method="POST", headers={
            "Authorization": self._authorization,
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        })
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                raise self._error_reply(error.code, error.reason, error.read()) from None
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise SmsError(f"SMS gateway unreachable at {self.settings.base_url}: {reason}",
                           retryable=True) from error
        if status not in _ACCEPTED:
            raise self._error_reply(status, "", payload)
        return self._receipt(status, payload)

    def _receipt(self, status: int, payload: bytes) -> SmsReceipt:
        # Not retryable: the gateway said it accepted the message, so sending again could deliver it twice.
        document = _json_object(payload)
        sid, message_status = (document or {}).get("sid"), (document or {}).get("status")
        if not isinstance(sid, str) or not sid or not isinstance(message_status, str):
            raise SmsError(f"SMS gateway accepted the message but its reply is not a Twilio message: "
                           f"{_excerpt(payload)}", status=status)
        return SmsReceipt(sid=sid, status=message_status)

    @staticmethod
    def _error_reply(status: int, reason: str, payload: bytes) -> SmsError:
        retryable = _retryable_status(status)
        document = _json_object(payload)
        if document is None:
            return SmsError(f"SMS gateway replied HTTP {status} {reason}".rstrip() +
                            f" with a body that is not Twilio JSON: {_excerpt(payload)}",
                            status=status, retryable=retryable)
        code = document.get("code")
        message = document.get("message")
        return SmsError(message if isinstance(message, str) and message else f"SMS gateway replied HTTP {status}",
                        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                        status=status, retryable=retryable)


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _excerpt(payload: bytes, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace").strip()
    if not text:
        return "(empty)"
    return repr(text if len(text) <= limit else text[:limit] + "…")
