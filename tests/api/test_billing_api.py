"""Billing through the API: the billing services and the access policy of the pages, with the API's conventions
(money as strings, If-Match on every change, Idempotency-Key required for payments, cursors, problems)."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.api.models import IdempotencyKey
from app.billing.models import Claim, Invoice, InvoiceStatus, Payment, Refund
from app.events.models import OutboxEvent
from app.extensions import db
from tests.api.tokens import auth, token_for
from tests.billing.conftest import admin, clerk, completed_appointment, doctor, make_invoice, patient  # noqa: F401

pytestmark = pytest.mark.clock  # payments and issue days are the clinic's today: see `make test-clock`


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def desk(app, clerk):  # noqa: F811
    return token_for(app, clerk, "user/Invoice.cruds")


def etag(api, token, invoice_id) -> str:
    answer = api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(token))
    assert answer.status_code == 200, answer.get_json()
    return answer.headers["ETag"]


def pay(api, token, invoice_id, key, amount="40.00", **fields):
    return api.post(f"/api/v1/invoices/{invoice_id}/payments", json={"amount": amount, "method": "card", **fields},
                    headers=auth(token, **({"Idempotency-Key": key} if key else {})))


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_clerk_bills_a_visit_and_the_patient_reads_the_issued_bill(app, api, desk, patient, create_patient,  # noqa: F811
                                                                     completed_appointment):  # noqa: F811
    visit = completed_appointment()
    answer = api.post("/api/v1/invoices", headers=auth(desk), json={
        "appointment_id": visit, "lines": [{"description": "Blood test", "quantity": 2, "unit_price": "20.00"}]})
    assert answer.status_code == 201, answer.get_json()
    draft = answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/invoices/{draft['id']}"
    assert draft["status"] == "draft" and draft["number"] is None and draft["patient_id"] == patient.id
    assert draft["currency"] == app.config["HMS_CURRENCY"]
    assert [(line["description"][:12], line["line_total"]) for line in draft["lines"]] == [
        ("Consultation", "150.00"), ("Blood test", "40.00")]
    assert draft["total"] == draft["balance"] == "190.00" and draft["subtotal"] == "190.00"

    own = token_for(app, patient, "patient/Invoice.rs")
    assert api.get(answer.headers["Location"], headers=auth(own)).status_code == 404  # a draft is never shown
    issued = api.post(f"/api/v1/invoices/{draft['id']}/issue", headers=auth(desk, **{"If-Match": answer.headers["ETag"]}))
    assert issued.status_code == 200, issued.get_json()
    assert issued.get_json()["status"] == "issued" and issued.get_json()["number"].startswith("INV-")
    assert issued.headers["ETag"] == etag(api, desk, draft["id"])

    bill = api.get(answer.headers["Location"], headers=auth(own))
    assert bill.status_code == 200 and bill.get_json()["balance"] == "190.00"
    mine = api.get(f"/api/v1/patients/{patient.id}/invoices", headers=auth(own)).get_json()
    assert [i["id"] for i in mine["items"]] == [draft["id"]]
    with app.app_context():
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "invoice.issued"))
        assert event.envelope["actor"]["client_id"] == "test-app"
        assert db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "invoice.viewed")) is not None

    again = api.post("/api/v1/invoices", json={"appointment_id": visit}, headers=auth(desk))
    assert again.status_code == 409 and again.get_json()["code"] == "already_billed"


def test_a_patient_never_reads_another_patients_bill_and_other_roles_are_refused(
        app, api, desk, patient, create_patient, doctor, make_invoice):  # noqa: F811
    invoice_id = make_invoice()
    other = token_for(app, create_patient(), "patient/*.cruds")
    assert api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(other)).status_code == 404
    assert api.get(f"/api/v1/patients/{patient.id}/invoices", headers=auth(other)).status_code == 404
    assert api.get("/api/v1/invoices", headers=auth(other)).status_code == 403
    assert pay(api, other, invoice_id, "k-other").status_code == 403
    by_doctor = token_for(app, doctor)
    assert api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(by_doctor)).status_code == 404
    assert api.post("/api/v1/invoices", json={"patient_id": patient.id}, headers=auth(by_doctor)).status_code == 403
    assert api.get("/api/v1/invoices/999999", headers=auth(desk)).status_code == 404


def test_a_missing_scope_is_403_insufficient_scope(app, api, clerk, make_invoice):  # noqa: F811
    invoice_id = make_invoice()
    read_only = token_for(app, clerk, "user/Invoice.rs")
    assert api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(read_only)).status_code == 200
    refused = pay(api, read_only, invoice_id, "k-scope")
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("/insufficient-scope")
    no_invoices = token_for(app, clerk, "user/Appointment.rs")
    assert api.get("/api/v1/invoices", headers=auth(no_invoices)).status_code == 403
    assert count(app, Payment) == 0


def test_draft_changes_need_the_invoices_current_etag(app, api, desk, make_invoice):
    invoice_id = make_invoice(issue=False)
    url = f"/api/v1/invoices/{invoice_id}"
    first = etag(api, desk, invoice_id)
    line = {"description": "X-ray", "unit_price": 80}
    assert api.post(f"{url}/lines", json=line, headers=auth(desk)).status_code == 428
    assert api.post(f"{url}/lines", json=line, headers=auth(desk, **{"If-Match": '"stale"'})).status_code == 412
    added = api.post(f"{url}/lines", json=line, headers=auth(desk, **{"If-Match": first}))
    assert added.status_code == 200 and added.get_json()["total"] == "180.00"
    line_id = added.get_json()["lines"][-1]["id"]
    lost = api.delete(f"{url}/lines/{line_id}", headers=auth(desk, **{"If-Match": first}))
    assert lost.status_code == 412  # the copy read before the line was added is stale
    removed = api.delete(f"{url}/lines/{line_id}", headers=auth(desk, **{"If-Match": added.headers["ETag"]}))
    assert removed.status_code == 200 and removed.get_json()["total"] == "100.00"
    gone = api.delete(f"{url}/lines/{line_id}", headers=auth(desk, **{"If-Match": removed.headers["ETag"]}))
    assert gone.status_code == 404
    discounted = api.post(f"{url}/discount", json={"discount": "10.00"},
                          headers=auth(desk, **{"If-Match": removed.headers["ETag"]}))
    assert discounted.status_code == 422 and discounted.get_json()["errors"][0]["pointer"] == "/discount_reason"


def test_field_errors_point_at_the_field(app, api, desk, patient, make_invoice):  # noqa: F811
    created = api.post("/api/v1/invoices", headers=auth(desk), json={
        "patient_id": patient.id, "lines": [{"description": "Ok", "unit_price": "1.00"}, {"quantity": 2}]})
    assert created.status_code == 422
    assert created.get_json()["errors"][0]["pointer"] == "/lines/1/unit_price"
    assert count(app, Invoice) == 0  # the draft of the refused request was rolled back
    nobody = api.post("/api/v1/invoices", json={}, headers=auth(desk))
    assert nobody.status_code == 422 and nobody.get_json()["errors"][0]["pointer"] == "/patient_id"
    invoice_id = make_invoice()
    cents = pay(api, desk, invoice_id, "k-cents", amount="12.345")
    assert cents.status_code == 422 and cents.get_json()["errors"][0]["pointer"] == "/amount"
    unknown = pay(api, desk, invoice_id, "k-unknown", colour="red")
    assert {"pointer": "/colour", "detail": "Unknown field."} in unknown.get_json()["errors"]
    too_much = pay(api, desk, invoice_id, "k-much", amount="100.01")
    assert too_much.status_code == 422 and too_much.get_json()["code"] == "over_balance"
    assert too_much.get_json()["errors"][0]["pointer"] == "/amount"


def test_a_payment_needs_an_idempotency_key_and_a_retry_records_it_once(app, api, desk, make_invoice):
    invoice_id = make_invoice()
    missing = pay(api, desk, invoice_id, None)
    assert missing.status_code == 400 and missing.get_json()["type"].endswith("/idempotency-key-required")
    first = pay(api, desk, invoice_id, "pay-1")
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["amount"] == "40.00" and first.get_json()["refundable"] == "40.00"
    retry = pay(api, desk, invoice_id, "pay-1")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    other = pay(api, desk, invoice_id, "pay-1", amount="10.00")
    assert other.status_code == 422 and other.get_json()["type"].endswith("/idempotency-key-reused")
    assert count(app, Payment) == 1
    invoice = api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(desk)).get_json()
    assert invoice["status"] == "partially_paid" and invoice["balance"] == "60.00"
    assert [p["id"] for p in invoice["payments"]] == [first.get_json()["id"]]
    draft = pay(api, desk, make_invoice(issue=False), "pay-draft")
    assert draft.status_code == 409 and draft.get_json()["type"].endswith("/billing-conflict")
    assert draft.get_json()["code"] == "not_open"


def test_the_payment_services_own_key_holds_when_the_apis_record_of_the_key_is_gone(app, api, desk, make_invoice):
    """Another process that no longer finds the API's record of the key still records nothing twice."""
    invoice_id = make_invoice()
    first = pay(api, desk, invoice_id, "pay-2")
    with app.app_context():
        db.session.execute(sa.delete(IdempotencyKey))
        db.session.commit()
    again = pay(api, desk, invoice_id, "pay-2")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(app, Payment) == 1


def test_two_identical_payment_requests_at_once_record_one_payment(app, desk, make_invoice):
    invoice_id = make_invoice()
    answers = []
    barrier = threading.Barrier(2)

    def send():
        client = app.test_client()
        barrier.wait()
        answers.append(pay(client, desk, invoice_id, "pay-at-once"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) in ([201, 201], [201, 409]), [a.get_json() for a in answers]
    assert count(app, Payment) == 1
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).balance == 60


def test_a_refund_is_requested_by_a_clerk_decided_by_an_admin_and_recorded(app, api, desk, admin, patient,  # noqa: F811
                                                                          make_invoice):
    invoice_id = make_invoice()
    payment = pay(api, desk, invoice_id, "pay-3", amount="100.00").get_json()
    too_much = api.post(f"/api/v1/payments/{payment['id']}/refunds", json={"amount": "100.01", "reason": "x"},
                        headers=auth(desk))
    assert too_much.status_code == 422 and too_much.get_json()["errors"][0]["pointer"] == "/amount"
    asked = api.post(f"/api/v1/payments/{payment['id']}/refunds", json={"amount": "30.00", "reason": "Overcharged"},
                     headers=auth(desk))
    assert asked.status_code == 201 and asked.get_json()["status"] == "requested"
    refund_id = asked.get_json()["id"]
    url = f"/api/v1/refunds/{refund_id}"
    boss = token_for(app, admin, "user/Invoice.cruds")
    current = etag(api, boss, invoice_id)
    assert api.post(f"{url}/approve", headers=auth(desk, **{"If-Match": current})).status_code == 403
    assert api.post(f"{url}/paid", headers=auth(desk, **{"If-Match": current})).get_json()["code"] == "not_approved"
    no_note = api.post(f"{url}/reject", json={}, headers=auth(boss, **{"If-Match": current}))
    assert no_note.status_code == 422 and no_note.get_json()["errors"][0]["pointer"] == "/note"
    approved = api.post(f"{url}/approve", json={"note": "Fine"}, headers=auth(boss, **{"If-Match": current}))
    assert approved.status_code == 200 and approved.get_json()["refunds"][0]["status"] == "approved"
    twice = api.post(f"{url}/approve", headers=auth(boss, **{"If-Match": approved.headers["ETag"]}))
    assert twice.status_code == 409 and twice.get_json()["type"].endswith("/billing-conflict")
    own = token_for(app, patient, "patient/Invoice.rs")
    assert api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(own)).get_json()["refunds"] == []
    recorded = api.post(f"{url}/paid", json={"reference": "TX-9"},
                        headers=auth(desk, **{"If-Match": approved.headers["ETag"]}))
    assert recorded.status_code == 200, recorded.get_json()
    assert recorded.get_json()["balance"] == "30.00" and recorded.get_json()["status"] == "partially_paid"
    seen = api.get(f"/api/v1/invoices/{invoice_id}", headers=auth(own)).get_json()["refunds"]
    assert [(r["amount"], r["status"]) for r in seen] == [("30.00", "recorded")]
    assert api.post("/api/v1/refunds/999999/approve", headers=auth(boss, **{"If-Match": "*"})).status_code == 404
    with app.app_context():
        assert db.session.get(Refund, refund_id).reference == "TX-9"


def test_claims_are_submitted_decided_paid_or_withdrawn(app, api, desk, make_invoice):
    invoice_id = make_invoice(lines=(("Surgery", 1, "1000.00"),))
    over = api.post(f"/api/v1/invoices/{invoice_id}/claims", headers=auth(desk),
                    json={"payer": "Acme Health", "policy_number": "P-1", "claimed_amount": "1000.01"})
    assert over.status_code == 422 and over.get_json()["errors"][0]["pointer"] == "/claimed_amount"
    filed = api.post(f"/api/v1/invoices/{invoice_id}/claims", headers=auth(desk),
                     json={"payer": "Acme Health", "policy_number": "P-1", "claimed_amount": "800.00"})
    assert filed.status_code == 201 and filed.get_json()["status"] == "submitted"
    claim_id = filed.get_json()["id"]
    url = f"/api/v1/claims/{claim_id}"
    current = etag(api, desk, invoice_id)
    no_code = api.post(f"{url}/decide", json={"status": "partially_approved", "approved_amount": "500.00"},
                       headers=auth(desk, **{"If-Match": current}))
    assert no_code.status_code == 422 and no_code.get_json()["errors"][0]["pointer"] == "/reason_code"
    decided = api.post(f"{url}/decide", headers=auth(desk, **{"If-Match": current}),
                       json={"status": "partially_approved", "approved_amount": "500.00", "reason_code": "CO-45"})
    assert decided.status_code == 200, decided.get_json()
    body = decided.get_json()
    assert body["claims"][0]["approved_amount"] == "500.00" and body["patient_due"] == "500.00"
    paid = api.post(f"{url}/paid", json={}, headers=auth(desk, **{"If-Match": decided.headers["ETag"]}))
    assert paid.status_code == 200 and paid.get_json()["balance"] == "500.00"
    assert paid.get_json()["insurer_paid"] == "500.00"
    withdraw = api.post(f"{url}/withdraw", json={"reason": "Filed in error"},
                        headers=auth(desk, **{"If-Match": paid.headers["ETag"]}))
    assert withdraw.status_code == 409 and withdraw.get_json()["code"] == "not_submitted"

    second = api.post(f"/api/v1/invoices/{invoice_id}/claims", headers=auth(desk),
                      json={"payer": "Other", "policy_number": "P-2", "claimed_amount": "100.00"}).get_json()
    withdrawn = api.post(f"/api/v1/claims/{second['id']}/withdraw", json={"reason": "Wrong insurer"},
                         headers=auth(desk, **{"If-Match": etag(api, desk, invoice_id)}))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["claims"][1]["status"] == "withdrawn"
    with app.app_context():
        assert db.session.get(Claim, second["id"]).withdrawal_reason == "Wrong insurer"


def test_voiding_follows_the_billing_rules(app, api, desk, make_invoice):
    paid_on = make_invoice()
    pay(api, desk, paid_on, "pay-4")
    refused = api.post(f"/api/v1/invoices/{paid_on}/void", json={"reason": "Wrong patient"},
                       headers=auth(desk, **{"If-Match": etag(api, desk, paid_on)}))
    assert refused.status_code == 409 and refused.get_json()["code"] == "has_payments"
    draft = make_invoice(issue=False)
    no_reason = api.post(f"/api/v1/invoices/{draft}/void", json={"reason": ""},
                         headers=auth(desk, **{"If-Match": etag(api, desk, draft)}))
    assert no_reason.status_code == 422 and no_reason.get_json()["errors"][0]["pointer"] == "/reason"
    voided = api.post(f"/api/v1/invoices/{draft}/void", json={"reason": "Duplicate"},
                      headers=auth(desk, **{"If-Match": etag(api, desk, draft)}))
    assert voided.status_code == 200 and voided.get_json()["status"] == "void"
    with app.app_context():
        assert db.session.get(Invoice, draft).status is InvoiceStatus.VOID


def test_invoices_are_listed_with_filters_and_a_cursor(app, api, desk, patient, create_patient, make_invoice):  # noqa: F811
    someone = create_patient()
    ids = [make_invoice(), make_invoice(issue=False), make_invoice(), make_invoice(patient_id=someone.id)]
    first = api.get("/api/v1/invoices?limit=3", headers=auth(desk))
    assert first.status_code == 200
    assert [i["id"] for i in first.get_json()["items"]] == ids[::-1][:3]
    assert first.headers["Link"].endswith('>; rel="next"')
    newer = make_invoice()  # stable under inserts: a new invoice does not shift the next page
    second = api.get(first.headers["Link"].split(";")[0].strip("<>"), headers=auth(desk)).get_json()
    assert [i["id"] for i in second["items"]] == [ids[0]] and second["next_cursor"] is None
    drafts = api.get("/api/v1/invoices?status=draft", headers=auth(desk)).get_json()["items"]
    assert [i["id"] for i in drafts] == [ids[1]]
    theirs = api.get(f"/api/v1/invoices?patient_id={someone.id}", headers=auth(desk)).get_json()["items"]
    assert [i["id"] for i in theirs] == [ids[3]]
    assert newer not in [i["id"] for i in theirs]
    backwards = api.get("/api/v1/invoices?issued_from=2030-01-02&issued_to=2030-01-01", headers=auth(desk))
    assert backwards.status_code == 422 and backwards.get_json()["errors"][0]["parameter"] == "issued_to"
    bad = api.get("/api/v1/invoices?status=lost&limit=500", headers=auth(desk))
    assert bad.status_code == 422 and {e["parameter"] for e in bad.get_json()["errors"]} == {"status", "limit"}
    own = token_for(app, patient, "patient/Invoice.rs")
    page = api.get(f"/api/v1/patients/{patient.id}/invoices?limit=1", headers=auth(own))
    assert [i["id"] for i in page.get_json()["items"]] == [newer]
    cursor = page.get_json()["next_cursor"]
    rest = api.get(f"/api/v1/patients/{patient.id}/invoices?cursor={cursor}", headers=auth(own)).get_json()["items"]
    assert [i["id"] for i in rest] == [ids[2], ids[0]]  # issued ones only, never the draft


def test_a_clerk_cannot_decide_a_refund_even_with_every_scope(app, api, clerk, make_invoice):  # noqa: F811
    token = token_for(app, clerk, "user/*.cruds")
    invoice_id = make_invoice()
    payment = pay(api, token, invoice_id, "pay-5").get_json()
    refund = api.post(f"/api/v1/payments/{payment['id']}/refunds", json={"amount": "1.00", "reason": "x"},
                      headers=auth(token)).get_json()
    answer = api.post(f"/api/v1/refunds/{refund['id']}/approve", headers=auth(token, **{"If-Match": "*"}))
    assert answer.status_code == 403
    assert count(app, Refund) == 1
