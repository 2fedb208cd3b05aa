"""Notification templates (admin editing, preview, sandbox), channel choices and the delivery log."""
from __future__ import annotations

import html
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from app.accounts.models import PatientProfile, Role
from app.extensions import db
from app.notifications.catalog import EVENTS
from app.notifications.models import Channel, DeliveryStatus, NotificationTemplate
from app.notifications.rendering import TemplateProblem, render
from app.notifications.services import install_default_templates, record_all_deliveries
from tests.helpers import text


@pytest.fixture
def templates(app):
    with app.app_context():
        install_default_templates()
        db.session.commit()
        rows = {(t.event_type, t.channel): t.id for t in db.session.scalars(sa.select(NotificationTemplate))}
    return rows


@pytest.fixture
def admin(client, create_user, login):
    login(create_user(Role.ADMIN))
    return client


def welcome_email(templates) -> int:
    return templates[("patient.registered", Channel.EMAIL)]


def stored(app, template_id: int) -> NotificationTemplate:
    with app.app_context():
        template = db.session.get(NotificationTemplate, template_id)
        db.session.expunge(template)
        return template


def test_defaults_are_installed_once_and_edits_are_kept(app, templates):
    assert len(templates) == sum(len(e.defaults) for e in EVENTS.values())
    with app.app_context():
        db.session.get(NotificationTemplate, welcome_email(templates)).subject = "Edited"
        db.session.commit()
        assert install_default_templates() == 0
        db.session.commit()
        assert db.session.get(NotificationTemplate, welcome_email(templates)).subject == "Edited"


def test_the_template_list_shows_every_event_and_channel(admin, templates):
    html = text(admin.get("/admin/templates"))
    assert "Patient signed up (welcome)" in html and "Patient profile changed (security notice)" in html
    assert html.count("/admin/templates/") == sum(len(e.defaults) for e in EVENTS.values())


def test_the_edit_page_documents_the_variables_and_previews_the_sample(admin, templates):
    html = text(admin.get(f"/admin/templates/{welcome_email(templates)}"))
    for variable in ("clinic_name", "recipient_name", "site_url", "email"):
        assert f"<code>{variable}</code>" in html
    assert "Welcome to HMS Clinic" in html and "Dear Maria Garcia" in html


def test_live_preview_renders_what_is_typed(admin, templates):
    response = admin.post_form(f"/admin/templates/{welcome_email(templates)}/preview",
                               {"subject": "Hello {{ recipient_name }}", "body_text": "Hi {{ email }}",
                                "body_html": "<p>{{ recipient_name }}</p>", "active": "y"}, htmx=True)
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert "Hello Maria Garcia" in html and "Hi maria.garcia@example.com" in html
    assert 'sandbox title="HTML preview"' in html


def test_preview_shows_why_a_template_does_not_render(admin, templates):
    response = admin.post_form(f"/admin/templates/{welcome_email(templates)}/preview",
                               {"subject": "Hi", "body_text": "Hello {{ recipient_name", "body_html": ""}, htmx=True)
    assert "Does not render" in text(response) and "line 1" in text(response)


@pytest.mark.parametrize("body,message", [
    ("Hello {{ recipient_name", "unexpected end of template"),
    ("Hello {{ patient_password }}", "'patient_password' is undefined"),
    ("{% for x in range(10) %}{{ x.__class__.__mro__ }}{% endfor %}", "unsafe"),
])
def test_a_template_that_does_not_render_cannot_be_saved(app, admin, templates, body, message):
    _, page = save_refused(app, admin, templates, body)
    assert "This template does not render" in page and message in page


def save_refused(app, admin, templates, body: str) -> tuple[int, str]:
    """Save `body` as the welcome email's text: refused with 422, the stored text unchanged; the id and page."""
    template_id = welcome_email(templates)
    before = stored(app, template_id)
    response = admin.post_form(f"/admin/templates/{template_id}",
                               {"subject": "Welcome", "body_text": body, "body_html": "", "active": "y"})
    assert response.status_code == 422
    assert stored(app, template_id).body_text == before.body_text
    return template_id, html.unescape(text(response))


def test_saving_a_template_keeps_it_and_is_audited(app, admin, templates):
    template_id = welcome_email(templates)
    response = admin.post_form(f"/admin/templates/{template_id}",
                               {"subject": "Hello {{ recipient_name }}", "body_text": "Welcome, {{ recipient_name }}.",
                                "body_html": "", "active": "y"})
    assert response.status_code == 303
    saved = stored(app, template_id)
    assert saved.subject == "Hello {{ recipient_name }}" and saved.body_html is None and saved.updated_by_id
    from app.events.models import OutboxEvent

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)
                                 .where(OutboxEvent.type == "notification_template.updated")) == 1


def test_a_preview_sent_without_a_subject_renders_the_rest(admin, templates):
    response = admin.post_form(f"/admin/templates/{welcome_email(templates)}/preview",
                               {"body_text": "Hi {{ email }}"}, htmx=True)
    assert response.status_code == 200 and "Hi maria.garcia@example.com" in text(response)


WORK = [("{% for i in range(100000000) %}x{% endfor %}", "range() is limited to 1,000 items"),
        ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "too much work"),
        ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}", "too much work"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself without end"),
        ("{{ 'x' * 1000000000 }}", "longer than 16,000 characters"),
        ("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", "more than 16,000 characters"),
        ("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "longer than 16,000 characters"),
        ("{{ 'x'|center(1000000000) }}", "numbers up to 1,000"),
        ("{{ '{:>999999999}'.format(1) }}", "format widths up to 1,000"),
        ("{{ 1 / 0 }}", "division by zero")]


@pytest.mark.parametrize("body,message", WORK)
def test_a_template_that_does_too_much_work_is_refused_beside_its_body(app, admin, templates, body, message):
    template_id, page = save_refused(app, admin, templates, body)
    assert 'id="body_text-error">This template does not render' in page and message in page
    assert body in page
    preview = admin.post_form(f"/admin/templates/{template_id}/preview", {"body_text": body}, htmx=True)
    assert preview.status_code == 200 and "Does not render" in text(preview)


def test_ordinary_loops_and_filters_still_render():
    rendered = render("Hi", "{% for i in range(3) %}{{ i }}{% endfor %} {{ 'ab'|upper }} {{ '%.1f'|format(2.25) }}",
                      None, {})
    assert rendered.body_text == "012 AB 2.2"


def test_an_email_template_needs_a_subject(admin, templates):
    response = admin.post_form(f"/admin/templates/{welcome_email(templates)}",
                               {"subject": " ", "body_text": "x", "body_html": ""})
    assert response.status_code == 422 and "Enter a subject." in text(response)


def test_sms_templates_have_no_subject_or_html(admin, templates):
    html = text(admin.get(f"/admin/templates/{templates[('patient.registered', Channel.SMS)]}"))
    assert 'name="body_text"' in html and 'name="subject"' not in html and 'name="body_html"' not in html


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR, Role.CLERK])
def test_only_admins_edit_templates(client, create_user, login, templates, role):
    login(create_user(role))
    assert client.get("/admin/templates").status_code == 403


def test_html_variables_are_escaped():
    rendered = render("Hi", "{{ name }}", "<p>{{ name }}</p>", {"name": "<script>x</script>"})
    assert rendered.body_text == "<script>x</script>"
    assert rendered.body_html == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


def test_sandbox_refuses_attribute_tricks():
    with pytest.raises(TemplateProblem):
        render(None, "{{ ''.__class__.__mro__[1].__subclasses__() }}", None, {})


# --- recording deliveries ----------------------------------------------------------------------------

def envelope(patient_id: int) -> dict:
    return {"id": str(uuid.uuid4()), "type": "patient.registered", "occurred_at": datetime.now(timezone.utc).isoformat(),
            "aggregate_type": "patient", "aggregate_id": str(patient_id), "patient_id": patient_id, "data": {}}


def test_without_a_gateway_sms_is_logged_as_not_sent(app, templates, create_patient):
    patient = create_patient()
    app.config["SMS_GATEWAY_URL"] = ""
    try:
        with app.app_context():
            db.session.get(PatientProfile, patient.id).notify_sms = True
            rows = {r.channel: r for r in record_all_deliveries([envelope(patient.id)])}
            db.session.commit()
            assert rows[Channel.SMS].status is DeliveryStatus.SKIPPED
            assert rows[Channel.SMS].last_error == "not sent: no gateway"
            assert rows[Channel.EMAIL].status is DeliveryStatus.PENDING
    finally:
        app.config["SMS_GATEWAY_URL"] = __import__("os").environ["SMS_GATEWAY_URL"]


def test_an_inactive_template_sends_nothing(app, templates, create_patient):
    patient = create_patient()
    with app.app_context():
        db.session.get(NotificationTemplate, welcome_email(templates)).active = False
        rows = record_all_deliveries([envelope(patient.id)])
        assert [r.channel for r in rows] == [Channel.SMS]


def test_the_notification_log_filters_and_paginates(app, admin, templates, create_patient):
    patient = create_patient(email="logged@example.com")
    with app.app_context():
        for _ in range(55):
            record_all_deliveries([envelope(patient.id)])
        db.session.commit()
    html = text(admin.get("/admin/notifications?channel=email&recipient=logged@example.com"))
    assert "Page 1 of 2 · 55 in all" in html
    assert "skipped: SMS not chosen" not in html
    html = text(admin.get(f"/admin/notifications?status=skipped&recipient={patient.phone[1:]}", htmx=True))
    assert "<html" not in html and "skipped: SMS not chosen" in html and "55 in all" in html
    assert "Nothing" not in text(admin.get("/admin/notifications?recipient=nobody"))
    assert "No messages" in text(admin.get("/admin/notifications?recipient=nobody"))


def test_patients_choose_their_channels_on_the_profile(app, client, create_patient, login):
    patient = create_patient()
    login(patient)
    html = text(client.get(f"/patient/{patient.id}/profile"))
    assert "Notifications" in html and "Email messages" in html
    response = client.post_form(f"/patient/{patient.id}/profile/notifications", {"notify_sms": "y"}, htmx=True)
    assert response.status_code == 200
    with app.app_context():
        profile = db.session.get(PatientProfile, patient.id)
        assert (profile.notify_email, profile.notify_sms) == (False, True)
