"""Bad input never ends in a 500: file parts where text is expected, out-of-range page numbers and fuzzed
query parameters on every list page (the SOAP note and template limits are tested beside their areas)."""
from __future__ import annotations

import io

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings, strategies as st
from wtforms import PasswordField, StringField

from app.accounts.models import Role
from app.db_types import TEXT_MAX_CHARS
from app.web.forms import FILE_PART_MESSAGE, Form
from tests.helpers import text
from tests.test_web import every_route

# Every paginated list page and who reads it.
LIST_PAGES = [(None, "/doctors/"), (Role.ADMIN, "/admin/doctors"), (Role.ADMIN, "/admin/staff"),
              (Role.ADMIN, "/admin/notifications"), (Role.ADMIN, "/admin/audit"), (Role.PATIENT, "/patient/bills"),
              (Role.PATIENT, "/patient/bills/history"), (Role.DOCTOR, "/doctor/appointments"),
              (Role.CLERK, "/billing/invoices")]
BAD_PAGES = ["9223372036854775808", "-1", "0", "abc", "99999999999999999999999999", "1e3", " ", "2.5"]


def app_form_classes() -> list[type[FlaskForm]]:
    found, todo = [], [FlaskForm]
    while todo:
        for subclass in todo.pop().__subclasses__():
            todo.append(subclass)
            if subclass.__module__.startswith("app."):
                found.append(subclass)
    return found


def sign_in_as(role, *, client, login, create_user, create_patient):
    if role is Role.PATIENT:
        return login(create_patient())
    if role is not None:
        return login(create_user(role))
    return client


def file_part(name: str = "note.txt") -> tuple[io.BytesIO, str]:
    return io.BytesIO(b"not text"), name


# --- file parts ------------------------------------------------------------------------------------------

def test_every_form_of_the_app_is_built_on_the_site_form(app):
    forms = app_form_classes()
    assert len(forms) > 40
    assert [f.__name__ for f in forms if not issubclass(f, Form)] == []


@pytest.mark.parametrize("field", ["full_name", "email", "phone", "address", "password"])
def test_a_file_sent_for_a_signup_field_is_refused_beside_it(client, field):
    data = {"full_name": "Ada Lovelace", "email": "ada@example.com", "password": "correct horse battery",
            "password_confirm": "correct horse battery", "date_of_birth": "1980-01-02", "sex": "female",
            "phone": "+12025550123", "address": "1 Main Street", "emergency_contact_name": "Sam",
            "emergency_contact_phone": "+12025550199", field: file_part()}
    response = client.post_form("/signup", data, content_type="multipart/form-data")
    assert response.status_code == 422, text(response)[:300]
    assert f'id="{field}-error">{FILE_PART_MESSAGE}' in text(response)
    assert 'value="Ada Lovelace"' in text(response) or field == "full_name"  # what was typed is kept


def test_a_file_sent_for_a_profile_field_is_refused_in_place(client, create_patient, login):
    patient = create_patient()
    login(patient)
    response = client.post_form(f"/patient/{patient.id}/profile/insurance",
                                {"insurance_provider": file_part(), "insurance_policy_number": "BS-9"},
                                htmx=True, content_type="multipart/form-data")
    assert response.status_code == 422 and FILE_PART_MESSAGE in text(response)


@pytest.mark.parametrize("role", [None, *Role])
def test_file_parts_on_every_post_route_never_end_in_a_500(app, client, create_user, create_patient, login, role):
    """Every POST of the site, with a file part for every field name any form has."""
    patient = create_patient()
    if role is Role.PATIENT:
        login(patient)
    elif role is not None:
        login(create_user(role))
    names = {name for form in app_form_classes() for name, value in vars(form).items()
             if hasattr(value, "field_class")}
    token = client.csrf_token("/")
    posts = [url for method, url in every_route(app, patient.id) if method == "POST"]
    assert len(posts) > 40
    for url in posts:
        data = {"csrf_token": token, **{name: file_part() for name in names}}
        response = client.http.post(url, data=data, content_type="multipart/form-data")
        response.close()
        assert response.status_code < 500, f"POST {url} answered {response.status_code}"


# --- fuzzing every form's fields on every POST route ------------------------------------------------------

FIELD_VALUES = st.one_of(
    st.text(max_size=60),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(str),
    st.sampled_from(["", " ", "-1", "0", "0.001", "1e309", "NaN", "-Infinity", "9" * 40, "2024-02-30", "24:61",
                     "\x00", "%", "'; DROP TABLE users; --", "<script>", "\u202e", "x" * 70_000]),
)
# Who reaches a POST route, by its path: the fuzz runs as that visitor, so the form is read, not refused.
POSTERS = [("/patient/", Role.PATIENT), ("/doctor/", Role.DOCTOR), ("/billing/refunds/", Role.ADMIN),
           ("/billing/", Role.CLERK), ("/admin/", Role.ADMIN), ("/", None)]
NOT_FUZZED = {"/logout"}  # it has no fields, and would end the fuzzing visitor's session


def _poster(url: str) -> Role | None:
    return next(role for prefix, role in POSTERS if url.startswith(prefix))


@pytest.mark.parametrize("role", [None, *Role])
def test_fuzzed_fields_of_every_form_on_every_post_route_never_end_in_a_500(app, client, create_user,
                                                                           create_patient, login, role):
    """Every field name any form of the app has, filled by hypothesis, posted to every POST route whose
    visitor is `role`."""
    patient = create_patient()
    if role is Role.PATIENT:
        login(patient)
    elif role is not None:
        login(create_user(role))
    names = sorted({name for form in app_form_classes() for name, value in vars(form).items()
                    if hasattr(value, "field_class")})
    token = client.csrf_token("/")
    posts = [url for method, url in every_route(app, patient.id)
             if method == "POST" and url not in NOT_FUZZED and _poster(url) is role]
    assert posts

    @settings(max_examples=3 * len(posts), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.fixed_dictionaries({}, optional={name: FIELD_VALUES for name in names}), st.sampled_from(posts),
           st.booleans())
    def check(data, url, htmx):
        response = client.post_form(url, {"csrf_token": token, **data}, htmx=htmx, csrf=False)
        response.close()
        assert response.status_code < 500, f"POST {url} {data!r} answered {response.status_code}"

    too_long = "x" * (TEXT_MAX_CHARS + 1)  # 100 such fields stay under the 2 MiB request limit
    for url in posts:  # every route at least once with every field too long, then hypothesis's choices
        response = client.post_form(url, {"csrf_token": token, **{name: too_long for name in names}}, csrf=False)
        response.close()
        assert response.status_code != 413 and response.status_code < 500, f"POST {url}: {response.status_code}"
    check()


# --- text fields have the limit of their column --------------------------------------------------------

def test_every_text_field_has_a_length_limit_that_fits_a_text_column(app):
    unbounded = []
    for form in app_form_classes():
        for name, value in vars(form).items():
            if getattr(value, "field_class", None) and issubclass(value.field_class, (StringField, PasswordField)):
                limits = [v.max for v in value.kwargs.get("validators") or () if getattr(v, "max", -1) not in (-1, None)]
                if not limits or min(limits) > TEXT_MAX_CHARS:
                    unbounded.append(f"{form.__name__}.{name}")
    assert unbounded == [], unbounded


# --- pagination ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role,url", LIST_PAGES)
def test_any_page_number_lands_on_a_real_page(client, create_user, create_patient, login, role, url):
    sign_in_as(role, client=client, login=login, create_user=create_user, create_patient=create_patient)
    for page in BAD_PAGES:
        response = client.get(url, query_string={"page": page})
        assert response.status_code == 200, f"{url}?page={page} answered {response.status_code}"
        response = client.get(url, query_string={"page": page}, htmx=True)
        assert response.status_code == 200, f"{url}?page={page} (HTMX) answered {response.status_code}"


def test_a_page_beyond_the_last_shows_the_last(app, client, create_user, login):
    admin = create_user(Role.ADMIN)
    for _ in range(3):
        create_user(Role.CLERK)
    login(admin)
    from app.web import pagination

    with app.test_request_context("/admin/staff?page=7"):
        assert pagination.requested_page() == 7
    html = text(client.get("/admin/staff", query_string={"page": "9223372036854775808"}))
    assert "clerk" in html.lower()  # the (only) page, not an empty list


# --- fuzzing the list pages' query parameters -----------------------------------------------------------------

QUERY_VALUES = st.one_of(st.text(max_size=40), st.integers().map(str), st.dates().map(str),
                         st.sampled_from(["", "-1", "0", "9223372036854775808", "2024-02-30", "%", "'", "\x00", "NaN"]))
QUERY_NAMES = ("page", "q", "status", "start", "end", "date_from", "date_to", "department", "state", "recipient",
               "channel", "actor_id", "patient_id", "action", "entity_type", "entity_id", "break_glass")


@pytest.mark.parametrize("role", [None, Role.ADMIN, Role.PATIENT, Role.DOCTOR, Role.CLERK])
def test_fuzzed_query_parameters_never_end_in_a_500(client, create_user, create_patient, login, role):
    sign_in_as(role, client=client, login=login, create_user=create_user, create_patient=create_patient)
    urls = [url for reader, url in LIST_PAGES if reader is role]

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(QUERY_NAMES), QUERY_VALUES, max_size=6), st.sampled_from(urls))
    def check(query, url):
        response = client.get(url, query_string=query)
        response.close()
        assert response.status_code < 500, f"{url} {query!r} answered {response.status_code}"

    check()


@pytest.mark.parametrize("role,url", [(Role.ADMIN, "/admin/notifications"), (Role.DOCTOR, "/doctor/appointments"),
                                      (Role.CLERK, "/billing/invoices")])
@pytest.mark.parametrize("value", ["\r", " ", "\t\n", "nonsense"])
def test_a_blank_looking_or_unknown_choice_is_refused_not_taken(client, create_user, create_patient, login, role, url,
                                                               value):
    """Found by the fuzz above: WTForms' Optional cleared the "not a valid choice" error of a lone "\\r"."""
    sign_in_as(role, client=client, login=login, create_user=create_user, create_patient=create_patient)
    response = client.get(url, query_string={"status": value})
    assert response.status_code in (200, 422), f"{url}?status={value!r} answered {response.status_code}"
