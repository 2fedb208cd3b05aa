"""What every mapping shares: instants, references, `meta`, and the identifier systems of this deployment."""
from __future__ import annotations

from datetime import date, datetime, timezone

from app.fhir.search import base_url
from app.timeutil import to_clinic_time

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def instant(moment: datetime) -> str:
    """An aware instant as FHIR writes it (UTC, with Z)."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def local_date(moment: datetime) -> str:
    return to_clinic_time(moment).date().isoformat()


def day(value: date) -> str:
    return value.isoformat()


def meta(updated: datetime, *profiles: str) -> dict:
    result: dict = {"lastUpdated": instant(updated)}
    if profiles:
        result["profile"] = list(profiles)
    return result


def ref(resource_type: str, ident: object, display: str | None = None) -> dict:
    reference = {"reference": f"{resource_type}/{ident}"}
    if display:
        reference["display"] = display
    return reference


def system(name: str) -> str:
    """An identifier system of this deployment: `<base>/sid/<name>` (patient, licence)."""
    return f"{base_url()}/sid/{name}"


def human_name(full_name: str) -> dict:
    """A name held whole, as FHIR parts: the last word is the family name, the words before it given names."""
    words = full_name.split()
    name = {"use": "official", "text": full_name}
    if words:
        name["family"] = words[-1]
        if len(words) > 1:
            name["given"] = words[:-1]
    return name
