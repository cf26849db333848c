"""Staff create server keys in the console (shown once), revoke them, and edit plan features."""

import re

from sqlalchemy import select

from portal import tokens
from portal.models import AuditEntry, Plan, ServerKey


def test_a_new_key_is_shown_once_and_works(client, staff, session):
    form = client.get("/admin/server_keys/new/")
    assert form.status_code == 200 and "New server key" in form.get_data(as_text=True)
    created = client.post("/admin/server_keys/new/", data={"name": "CRM sync", "scope": "write"})
    html = created.get_data(as_text=True)
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'value="(sbk_[^"]+)"', html).group(1)
    key = session.scalars(select(ServerKey)).one()
    assert key.token_hash == tokens.digest(secret) and key.scope == "write" and key.created_by_id == staff.id
    listing = client.get("/admin/server_keys/").get_data(as_text=True)
    assert "CRM sync" in listing and secret not in listing and key.token_hash not in listing
    assert client.get("/api/customers/", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_a_key_needs_a_name(client, staff, session):
    refused = client.post("/admin/server_keys/new/", data={"name": "", "scope": "read"})
    assert "Name the key" in refused.get_data(as_text=True)
    assert session.scalars(select(ServerKey)).all() == []


def test_revoking_is_audited_and_ends_access(client, staff, session):
    client.post("/admin/server_keys/new/", data={"name": "Old", "scope": "read"})
    key = session.scalars(select(ServerKey)).one()
    done = client.post(
        "/admin/server_keys/action/", data={"action": "revoke", "rowid": [str(key.id)]}, follow_redirects=True
    )
    assert "Revoked 1 key(s)." in done.get_data(as_text=True)
    session.expire_all()
    assert key.revoked_at is not None
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["create_server_key", "revoke_server_key"]


def test_customers_cannot_reach_server_keys(client, customer):
    assert client.get("/admin/server_keys/").status_code == 403
    assert client.post("/admin/server_keys/new/", data={"name": "x", "scope": "write"}).status_code == 403


def test_plan_features_are_edited_as_checked_json(client, staff, session):
    plan = session.scalar(select(Plan).where(Plan.code == "basic"))
    form = client.get(f"/admin/plan/edit/?id={plan.id}").get_data(as_text=True)
    assert "Features and limits" in form and "&#34;seats&#34;: 1" in form
    fields = {
        "code": "basic",
        "name": "Basic",
        "description": "",
        "price": "900",
        "currency": "USD",
        "interval": "month",
        "trial_days": "0",
        "active": "y",
        "sort_order": "1",
    }
    bad = client.post(f"/admin/plan/edit/?id={plan.id}", data={**fields, "features": '{"Seats": "x"}'})
    assert "Feature name" in bad.get_data(as_text=True)
    session.expire_all()
    assert plan.features == {"seats": 1, "priority_support": False}
    client.post(f"/admin/plan/edit/?id={plan.id}", data={**fields, "features": '{"seats": 3, "sso": true}'})
    session.expire_all()
    assert plan.features == {"seats": 3, "sso": True}
