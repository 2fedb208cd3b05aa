"""FHIR search: the parameters of a request, their types (token, string, date, reference), and the searchset
Bundle with `total` and stable keyset paging.

- Repeating a parameter is AND, a comma in its value is OR (FHIR R4 3.1.1.5).
- An unknown parameter is ignored and left out of the `self` link (lenient handling), unless the request says
  `Prefer: handling=strict`: then 400. A known parameter with a modifier or a value it cannot take is always 400.
- `_count` (default 50, at most 100) and `_cursor`: the opaque position after the last entry of the previous
  page. Each search orders its matches by a unique key (the id, or a slot's start), so a page never repeats or
  skips an entry whatever was added meanwhile before the position.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import request

from app.extensions import db
from app.fhir.outcomes import FhirError
from app.oauth.bearer import fhir_audience
from app.timeutil import clinic_zone

DEFAULT_COUNT = 50
MAX_COUNT = 100
COMMON = {"_id": "token", "_lastUpdated": "date"}  # every resource type's
RESULT_PARAMETERS = ("_count", "_cursor", "_format", "_include")
JSON_FORMATS = {"json", "application/json", "application/fhir+json"}
MODIFIERS = {"string": ("exact", "contains")}


def base_url() -> str:
    return fhir_audience()


def strict() -> bool:
    """`Prefer: handling=strict` (RFC 7240: preferences separated by commas, parameters by semicolons)."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().replace(" ", "").lower() == "handling=strict" for part in re.split(r"[,;]", prefer))


# --- parameter values ---------------------------------------------------------------------------------------

_ID = re.compile(r"[1-9][0-9]{0,17}")


def as_id(text: str | None) -> int:
    """The database id a FHIR id or parameter names, or 0 (which names nothing)."""
    return int(text) if text and _ID.fullmatch(text) else 0


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?"
                   r"(Z|[+-]\d{2}:\d{2})?)?)?)?$")
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


@dataclass(frozen=True)
class DateParam:
    """A date search value as the instants [low, high) its precision covers, and its comparison prefix."""
    prefix: str
    low: datetime
    high: datetime

    def matches(self, value: datetime | date | None) -> bool:
        if value is None:
            return False
        instant = _instant(value)
        inside = self.low <= instant < self.high
        return {"eq": inside, "ne": not inside, "gt": instant >= self.high, "ge": instant >= self.low,
                "lt": instant < self.low, "le": instant < self.high}[self.prefix]

    def clause(self, column, *, dates: bool = False) -> sa.ColumnElement[bool]:
        low, high = (self.low, self.high) if not dates else (_local_date(self.low), _local_date(self.high))
        return {"eq": sa.and_(column >= low, column < high), "ne": sa.or_(column < low, column >= high),
                "gt": column >= high, "ge": column >= low, "lt": column < low, "le": column < high}[self.prefix]


def _instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, datetime.min.time(), tzinfo=clinic_zone())


def _local_date(moment: datetime) -> date:
    return moment.astimezone(clinic_zone()).date()


def parse_date(name: str, text: str) -> DateParam:
    prefix = text[:2] if text[:2] in DATE_PREFIXES else "eq"
    value = text[2:] if text[:2] in DATE_PREFIXES else text
    match = _DATE.match(value)
    if not match:
        raise FhirError(400, f"{name}: {text[:40]!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime, "
                             f"with an optional prefix {', '.join(DATE_PREFIXES)}).", expression=name)
    year, month, day, hour, minute, second, zone = match.groups()
    if not 1000 <= int(year) <= 9998:  # the database's range of dates, with a year to spare
        raise FhirError(400, f"{name}: {text[:40]!r} is out of range.", expression=name)
    try:
        if hour is None:
            start = date(int(year), int(month or 1), int(day or 1))
            if day:
                end = start + timedelta(days=1)
            elif month:
                end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            else:
                end = date(start.year + 1, 1, 1)
            return DateParam(prefix, _instant(start), _instant(end))
        tz = clinic_zone() if zone is None else (timezone.utc if zone == "Z" else datetime.strptime(zone, "%z").tzinfo)
        low = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
    except (ValueError, OverflowError):
        raise FhirError(400, f"{name}: {text[:40]!r} is not a valid date.", expression=name) from None
    return DateParam(prefix, low, low + (timedelta(seconds=1) if second else timedelta(minutes=1)))


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system
    code: str | None  # None: any code of the system

    def matches(self, codings: Iterable[tuple[str | None, str | None]]) -> bool:
        return any((self.system is None or self.system == system) and (self.code is None or self.code == code)
                   for system, code in codings)


def parse_token(text: str) -> Token:
    if "|" not in text:
        return Token(None, text)
    system, _, code = text.partition("|")
    return Token(system, code or None)


def parse_reference(name: str, text: str, resource_type: str) -> str:
    """The id of a reference value: `123`, `Patient/123` or the full URL."""
    value = text.rstrip("/")
    if value.startswith(base_url() + "/"):
        value = value[len(base_url()) + 1:]
    kind, _, ident = value.rpartition("/")
    if kind and kind != resource_type:
        raise FhirError(400, f"{name} refers to {resource_type} resources, not {kind[:40]}.", expression=name)
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", ident):
        raise FhirError(400, f"{name}: {text[:40]!r} is not a reference to a {resource_type}.", expression=name)
    return ident


# --- the request ------------------------------------------------------------------------------------------

@dataclass
class SearchQuery:
    """What a search request asks, checked against the parameters its resource type supports."""
    resource_type: str
    params: dict[str, str]  # name -> type: what the type supports (CapabilityStatement lists the same)
    includes: tuple[str, ...] = ()
    values: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> [(modifier, value)]
    count: int = DEFAULT_COUNT
    cursor: list | None = None
    include: list[str] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # for the self link
    path: str = ""  # of the links, under the base URL: the type, or an operation's path

    @classmethod
    def parse(cls, resource_type: str, params: dict[str, str], includes: tuple[str, ...] = (),
              args=None, *, path: str | None = None) -> SearchQuery:
        query = cls(resource_type, {**COMMON, **params}, includes, path=path or resource_type)
        is_strict = strict()
        for name, items in (args if args is not None else request.args).lists():
            base, _, modifier = name.partition(":")
            if base in RESULT_PARAMETERS and (base != "_include" or includes):
                query._result_parameter(base, items)
                continue
            kind = query.params.get(base)
            if kind is None:
                if is_strict:
                    raise FhirError(400, f"Unknown search parameter {name[:60]!r} for {resource_type}.",
                                    code="not-supported", expression=name[:60])
                continue
            if modifier and modifier not in MODIFIERS.get(kind, ()):
                raise FhirError(400, f"The modifier :{modifier[:30]} of {base} is not supported.",
                                code="not-supported", expression=name[:60])
            for item in items:
                if item == "":
                    continue
                query.values.setdefault(base, []).append((modifier, item))
                query.used.append((name, item))
        return query

    def _result_parameter(self, name: str, items: list[str]) -> None:
        value = items[-1]
        if name == "_count":
            if not re.fullmatch(r"[0-9]{1,9}", value):
                raise FhirError(400, "_count must be a whole number from 0.", expression="_count")
            self.count = min(int(value), MAX_COUNT)
        elif name == "_cursor":
            self.cursor = decode_cursor(value)
        elif name == "_format":
            if value not in JSON_FORMATS:
                raise FhirError(406, "This server answers JSON only (_format=json).", code="not-supported")
        elif name == "_include":
            for item in items:
                if item not in self.includes:
                    raise FhirError(400, f"_include={item[:60]} is not supported; supported: "
                                         f"{', '.join(self.includes)}.", code="not-supported", expression="_include")
                self.include.append(item)
                self.used.append(("_include", item))

    # what each parameter asks, as AND-lists of OR-lists ----------------------------------------------------

    def raw(self, name: str) -> list[list[tuple[str, str]]]:
        return [[(modifier, part) for part in value.split(",") if part] for modifier, value in self.values.get(name, [])]

    def has(self, name: str) -> bool:
        return name in self.values

    def dates(self, name: str) -> list[list[DateParam]]:
        return [[parse_date(name, part) for _, part in ors] for ors in self.raw(name)]

    def tokens(self, name: str) -> list[list[Token]]:
        return [[parse_token(part) for _, part in ors] for ors in self.raw(name)]

    def strings(self, name: str) -> list[list[tuple[str, str]]]:
        return self.raw(name)

    def references(self, name: str, resource_type: str) -> list[list[str]]:
        return [[parse_reference(name, part, resource_type) for _, part in ors] for ors in self.raw(name)]

    def reference(self, name: str, resource_type: str) -> str | None:
        """The one id a reference parameter names (several: 400), or None."""
        ids = {ident for ors in self.references(name, resource_type) for ident in ors}
        if len(ids) > 1:
            raise FhirError(400, f"Name one {resource_type} in {name}.", expression=name)
        return next(iter(ids), None)

    def ids(self) -> list[list[str]]:
        return [[token.code or "" for token in ors] for ors in self.tokens("_id")]

    def link(self, cursor: str | None = None) -> str:
        params = [*self.used, ("_count", str(self.count))]
        if cursor is not None:
            params.append(("_cursor", cursor))
        return f"{base_url()}/{self.path}?{urlencode(params)}"


# --- string matching (names) ------------------------------------------------------------------------------

def string_clause(column, modifier: str, text: str) -> sa.ColumnElement[bool]:
    """FHIR string search on a name held whole: a word of it starts with the text (any case); :exact is the
    whole value, :contains anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if modifier == "exact":
        return column == text
    if modifier == "contains":
        return column.like(f"%{escaped}%", escape="\\")
    return sa.or_(column.like(f"{escaped}%", escape="\\"), column.like(f"% {escaped}%", escape="\\"))


def string_matches(value: str, modifier: str, text: str) -> bool:
    folded, wanted = value.casefold(), text.casefold()
    if modifier == "exact":
        return value == text
    if modifier == "contains":
        return wanted in folded
    return folded.startswith(wanted) or f" {wanted}" in folded


# --- paging -----------------------------------------------------------------------------------------------

def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or not values or not all(
            (isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63) or isinstance(v, str) for v in values):
        raise FhirError(400, "_cursor is not one this server gave.", expression="_cursor")
    return values


@dataclass
class Page:
    resources: list[dict]
    total: int
    next_cursor: str | None = None
    included: list[dict] = field(default_factory=list)


def sql_page(query: SearchQuery, select: sa.Select, id_column, to_resource: Callable[[object], dict], *,
             id_of: Callable[[object], int] = lambda row: row.id) -> Page:
    """A page of `select`'s rows in `id_column` order, after the cursor's id; `total` counts every match."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(select.order_by(None).subquery()))
    if query.cursor is not None:
        if len(query.cursor) != 1 or not isinstance(query.cursor[0], int):
            raise FhirError(400, "_cursor is not one this server gave.", expression="_cursor")
        select = select.where(id_column > query.cursor[0])
    rows = list(db.session.scalars(select.order_by(id_column).limit(query.count + 1)).unique()) if query.count else []
    cursor = encode_cursor([id_of(rows[query.count - 1])]) if len(rows) > query.count else None
    return Page([to_resource(row) for row in rows[:query.count]], total, cursor)


def common_sql(query: SearchQuery, select: sa.Select, id_column, updated_column) -> sa.Select:
    """`_id` and `_lastUpdated` as SQL, for a type whose ids are its table's integer ids."""
    for ors in query.ids():
        select = select.where(id_column.in_([as_id(v) for v in ors]))
    for ors in query.dates("_lastUpdated"):
        select = select.where(sa.or_(*(p.clause(updated_column) for p in ors)))
    return select


def list_page(query: SearchQuery, resources: Iterable[dict], key: Callable[[dict], list]) -> Page:
    """A page of resources built in memory (derived ones: slots, vital signs, the directory): `_id` and
    `_lastUpdated` are applied here, then the keyset position."""
    ids, updated = query.ids(), query.dates("_lastUpdated")
    matches = [r for r in resources if _common_matches(r, ids, updated)]
    matches.sort(key=key)
    total = len(matches)
    if query.cursor is not None:
        position = query.cursor
        try:
            matches = [r for r in matches if key(r) > position]
        except TypeError:
            raise FhirError(400, "_cursor is not one this server gave.", expression="_cursor") from None
    page = matches[:query.count]
    cursor = encode_cursor(key(page[-1])) if len(matches) > query.count and page else None
    return Page(page, total, cursor)


def _common_matches(resource: dict, ids: list[list[str]], updated: list[list[DateParam]]) -> bool:
    if not all(resource["id"] in ors for ors in ids):
        return False
    if not updated:
        return True
    last = resource.get("meta", {}).get("lastUpdated")
    moment = datetime.fromisoformat(last) if last else None
    return all(any(p.matches(moment) for p in ors) for ors in updated)


def bundle(query: SearchQuery, page: Page) -> dict:
    links = [{"relation": "self", "url": query.link(encode_cursor(query.cursor) if query.cursor else None)}]
    if page.next_cursor is not None:
        links.append({"relation": "next", "url": query.link(page.next_cursor)})
    entries = [{"fullUrl": f"{base_url()}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match"}} for r in page.resources]
    entries += [{"fullUrl": f"{base_url()}/{r['resourceType']}/{r['id']}", "resource": r,
                 "search": {"mode": "include"}} for r in page.included]
    result = {"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links}
    if entries:  # FHIR JSON has no empty arrays
        result["entry"] = entries
    return result
