"""Billing details on the account page and in the API; the taxed invoice as customer and staff see it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.billing.customers import check_details, normalise_tax_id
from portal.billing.errors import BillingError
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, TaxRate, User
from portal.tokens import issue
from tests.conftest import login, utc
from tests.portal.test_api import conforms

VALID = {"name": "Ada Lovelace", "company": "Analytical Engines GmbH", "address": "Hauptstr. 1\n10115 Berlin"}


@pytest.mark.parametrize(
    "raw, country, normal",
    [
        ("DE 136 695 976", "DE", "DE136695976"),
        ("136695976", "DE", "DE136695976"),  # the prefix is added
        ("el 094259216", "GR", "EL094259216"),  # Greece: EL in VAT IDs
        ("FI 2077 4740", "FI", "FI20774740"),
        ("04-2103594", "US", "042103594"),  # a US EIN, by stdnum.us
        ("GB 980 7806 84", "GB", "980780684"),  # UK VAT, by stdnum.gb.vat
        ("", "DE", None),
    ],
)
def test_tax_ids_are_checked_and_normalised(raw, country, normal):
    assert normalise_tax_id(raw, country) == normal


@pytest.mark.parametrize(
    "raw, country, message",
    [
        ("DE 136 695 977", "DE", "is not a valid EU VAT ID for DE"),
        ("FR 40303265045", "DE", "not from the country you chose"),
        ("12-34", "US", "is not a valid tax ID for US"),
        ("DE136695976", None, "Choose your country"),
    ],
)
def test_a_bad_tax_id_gets_a_clear_message(raw, country, message):
    with pytest.raises(BillingError) as caught:
        normalise_tax_id(raw, country)
    assert message in caught.value.message


def test_the_country_must_come_from_the_list():
    _, errors = check_details({"country": "XX"})
    assert "Choose a country from the list" in errors["country"]
    details, errors = check_details({"country": "de", "name": "x\x00"})
    assert details.country == "DE" and "not allowed" in errors["name"]


def billing_page_link(client):
    html = client.get("/account").get_data(as_text=True)
    assert 'href="/account/billing"' in html
    return client.get("/account/billing")


def test_the_billing_details_form_saves_and_shows_the_details(client, customer, session):
    page = billing_page_link(client)
    assert page.status_code == 200 and "Billing details" in page.get_data(as_text=True)
    saved = client.post("/account/billing", data={**VALID, "country": "DE", "tax_id": "de 136 695 976"})
    assert saved.status_code == 303 and saved.location == "/account/billing"
    session.expire_all()
    user = session.get(User, customer.id)
    assert (user.billing_country, user.tax_id, user.billing_company) == ("DE", "DE136695976", VALID["company"])
    html = client.get("/account/billing").get_data(as_text=True)
    assert "DE136695976" in html and 'selected value="DE"' in html and "Hauptstr. 1" in html


def test_the_form_refuses_a_bad_tax_id_with_a_422_and_keeps_what_was_typed(client, customer, session):
    answer = client.post("/account/billing", data={**VALID, "country": "DE", "tax_id": "DE 136 695 977"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "is not a valid EU VAT ID for DE" in html and "Analytical Engines GmbH" in html
    session.expire_all()
    assert session.get(User, customer.id).tax_id is None  # nothing saved


def test_the_form_needs_its_csrf_token(app, client, customer, config):
    config["WTF_CSRF_ENABLED"] = True
    assert client.post("/account/billing", data={**VALID, "country": "DE"}).status_code == 400


def test_hostile_input_is_a_4xx(client, customer):
    assert client.post("/account/billing", data={"name": "a" * 5000, "country": "DE"}).status_code == 422
    assert client.post("/account/billing", data={"country": "D\x00"}).status_code in (400, 422)


@pytest.fixture()
def api(client, session, make_user):
    user = make_user(email="bot@example.com")
    _, secret = issue(session, user, "test", utc(2024, 1, 1))
    session.commit()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    return user, headers


def test_the_api_reads_and_updates_billing_details(client, api, session):
    _user, headers = api
    empty = client.get("/api/billing-details/", headers=headers)
    assert empty.status_code == 200 and empty.json["tax_id"] is None
    conforms(empty, "BillingDetails")
    saved = client.patch(
        "/api/billing-details/", headers=headers, data=json.dumps({"country": "fi", "tax_id": "FI 2077 4740"})
    )
    assert saved.status_code == 200, saved.json
    assert saved.json["country"] == "FI" and saved.json["tax_id"] == "FI20774740"
    conforms(saved, "BillingDetails")
    kept = client.patch("/api/billing-details/", headers=headers, data=json.dumps({"name": "Bot Oy"}))
    assert kept.json["tax_id"] == "FI20774740" and kept.json["name"] == "Bot Oy"
    bad = client.patch("/api/billing-details/", headers=headers, data=json.dumps({"tax_id": "FI 2077 4741"}))
    assert bad.status_code == 422 and "tax_id: " in bad.json["error"]["message"]
    unknown = client.patch("/api/billing-details/", headers=headers, data=json.dumps({"vat": "x"}))
    assert unknown.status_code == 422 and "Unknown field" in unknown.json["error"]["message"]
    wrong_type = client.patch("/api/billing-details/", headers=headers, data=json.dumps({"name": 5}))
    assert wrong_type.status_code == 422
    assert client.patch("/api/billing-details/", headers=headers, data="[").status_code == 400


def test_a_taxed_invoice_shows_lines_subtotal_tax_per_rate_and_total(client, session, make_user, app, config):
    config["SELLER_COUNTRY"] = "FI"
    session.add(TaxRate(name="VAT", percent=Decimal("25.5"), country="FI", inclusive=False, active=True))
    user = make_user(email="fi@example.com", billing_country="FI", billing_name="Veikko", billing_address="Katu 1")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings(seller_country="FI"))
    session.commit()
    login(client, user)
    invoice = session.scalar(select(Invoice).where(Invoice.user_id == user.id))
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert invoice.number == "INV-000001" and "INV-000001" in html
    for text in ("Pro plan", "25.5 %", "Subtotal", "$29.00", "VAT 25.5 % on $29.00", "$7.40", "$36.40", "Veikko"):
        assert text in html, text
    body = client.get(f"/api/invoices/{invoice.id}/", headers={"X-CSRFToken": "x"})
    assert body.status_code in (200, 403)  # session callers need the CSRF header; the shape is checked below


def test_reverse_charge_shows_the_legal_note(client, session, make_user, config):
    user = make_user(email="de@example.com", billing_country="DE", tax_id="DE136695976", billing_company="GmbH")
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings(seller_country="FI"))
    session.commit()
    login(client, user)
    invoice = session.scalar(select(Invoice).where(Invoice.user_id == user.id))
    html = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)" in html
    assert "DE136695976" in html and invoice.total == 2900 and invoice.tax_cents == 0


def test_the_api_invoice_has_number_subtotal_tax_and_taxed_lines(client, api, session):
    user, headers = api
    session.add(TaxRate(name="MwSt.", percent=Decimal(19), country="DE", inclusive=False, active=True))
    user.billing_country = "DE"
    subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10, 9), BillingSettings())
    session.commit()
    invoice = session.scalar(select(Invoice).where(Invoice.user_id == user.id))
    one = client.get(f"/api/invoices/{invoice.id}/", headers=headers)
    assert one.status_code == 200
    conforms(one, "Invoice")
    assert (one.json["number"], one.json["subtotal"], one.json["tax"], one.json["total"]) == (
        "INV-000001",
        2900,
        551,
        3451,
    )
    [line] = one.json["lines"]
    assert (line["tax"], line["tax_rate_percent"], line["tax_name"], line["quantity"]) == (551, "19", "MwSt.", 1)
    listed = client.get("/api/invoices/", headers=headers).json["items"][0]
    assert listed["number"] == "INV-000001" and listed["tax"] == 551


def test_staff_manage_tax_rates_in_the_console(client, session, make_user, config):
    config["CLOCK"] = lambda: utc(2024, 3, 5, 12)
    staff = make_user(email="staff@example.com", is_staff=True)
    login(client, staff)
    listing = client.get("/admin/taxrate/")
    assert listing.status_code == 200
    created = client.post(
        "/admin/taxrate/new/",
        data={"name": "VAT", "percent": "25.5", "country": "FI", "active": "y"},
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    rate = session.scalar(select(TaxRate))
    assert (rate.percent, rate.country, rate.inclusive) == (Decimal("25.5"), "FI", False)
    assert "25.5 %" in client.get("/admin/taxrate/").get_data(as_text=True)
    second = client.post("/admin/taxrate/new/", data={"name": "VAT", "percent": "24", "country": "FI", "active": "y"})
    assert "already has an active rate" in client.get("/admin/taxrate/").get_data(as_text=True) or (
        "already has an active rate" in second.get_data(as_text=True)
    )
    assert len(session.scalars(select(TaxRate)).all()) == 1
    bad = client.post("/admin/taxrate/new/", data={"name": "VAT", "percent": "250", "country": "SE"})
    assert "A rate is from 0 to 100 %" in bad.get_data(as_text=True)
    customer = client.get("/admin/taxrate/", headers={})
    assert customer.status_code == 200
