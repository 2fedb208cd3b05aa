"""Phone numbers: stored as E.164, entered and shown in the clinic region's national form."""
from __future__ import annotations

import phonenumbers
from flask import current_app


def normalize_phone(raw: str) -> str:
    """E.164 form of a valid phone number; raises ValueError otherwise."""
    try:
        number = phonenumbers.parse(raw, current_app.config["HMS_PHONE_REGION"])
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    """National form for numbers of the clinic's region, international form for the others."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    local = phonenumbers.region_code_for_number(number) == current_app.config["HMS_PHONE_REGION"]
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)
