import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from portal import tokens
from portal.api.openapi import spec
from portal.models import AuditEntry, ServerKey, User


def conforms(response, schema: str) -> None:
    document = spec()
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    Draft202012Validator(root).validate(response.get_json())


def test_a_server_key_is_stored_hashed_named_scoped_and_audited(session, server_key, staff_user):
    key = session.scalars(select(ServerKey)).one()
    secret = server_key.headers["Authorization"][7:]
    assert key.token_hash == tokens.digest(secret) and secret not in (key.token_hash, key.prefix)
    assert key.prefix == secret[:10] and key.name == "CRM" and key.scope == "write"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "create_server_key")).one()
    assert entry.actor_id == staff_user.id and entry.object_id == key.id


def test_a_server_key_creates_lists_and_reads_customers(server_key, session):
    created = server_key.post("/api/customers/", {"email": "New@Example.com", "name": "Nia"})
    assert created.status_code == 201, created.json
    conforms(created, "Customer")
    assert created.json["email"] == "new@example.com"
    again = server_key.post("/api/customers/", {"email": "new@example.com"})
    assert again.status_code == 409 and again.json["error"]["code"] == "customer_exists"
    bad = server_key.post("/api/customers/", {"email": "not an address"})
    assert bad.status_code == 422
    listing = server_key.get("/api/customers/")
    conforms(listing, "CustomerPage")
    assert [c["email"] for c in listing.json["items"]] == ["new@example.com"]  # staff are not customers
    assert server_key.get("/api/customers/?email=NEW@example.com").json["total"] == 1
    assert server_key.get(f"/api/customers/{created.json['id']}/").json["name"] == "Nia"
    assert server_key.get("/api/customers/999999/").status_code == 404
    key = session.scalars(select(ServerKey)).one()
    session.refresh(key)
    assert key.last_used_at is not None


def test_a_server_key_runs_any_customers_subscription(server_key, make_user, session, clock):
    user = make_user(email="c@example.com")
    base = f"/api/customers/{user.id}"
    assert server_key.get(f"{base}/subscription/").status_code == 404
    made = server_key.post(f"{base}/subscription/", {"plan": "basic"})
    assert made.status_code == 201 and made.json["customer_id"] == user.id
    conforms(made, "Subscription")
    preview = server_key.get(f"{base}/subscription/preview-change/?plan=pro")
    assert preview.status_code == 200 and preview.json["kind"] == "upgrade" and preview.json["amount"] > 0
    conforms(preview, "PlanChange")
    assert session.scalar(select(User).where(User.id == user.id)).subscriptions[0].plan.code == "basic"
    changed = server_key.post(f"{base}/subscription/change-plan/", {"plan": "pro"})
    assert changed.status_code == 200 and changed.json["subscription"]["plan"] == "pro"
    assert changed.json["invoice"]["kind"] == "proration" and changed.json["invoice"]["total"] == preview.json["amount"]
    conforms(changed, "PlanChange")
    paused = server_key.post(f"{base}/subscription/pause/")
    assert paused.status_code == 200 and paused.json["paused_at"] is not None
    ent = server_key.get(f"{base}/entitlements")
    assert ent.json["entitled"] is False and ent.json["reason"] == "paused"
    conforms(ent, "Entitlements")
    assert server_key.post(f"{base}/subscription/pause/").json["error"]["code"] == "already_paused"
    assert server_key.post(f"{base}/subscription/unpause/").json["paused_at"] is None
    assert server_key.post(f"{base}/subscription/cancel/").json["cancel_at_period_end"] is True
    resumed = server_key.post(f"{base}/subscription/resume/")
    assert resumed.status_code == 200 and resumed.json["cancel_at_period_end"] is False
    invoices = server_key.get(f"{base}/invoices/")
    conforms(invoices, "InvoicePage")
    assert invoices.json["total"] == 2
    one = server_key.get(f"{base}/invoices/{invoices.json['items'][0]['id']}/")
    assert one.status_code == 200
    conforms(one, "Invoice")
    other = make_user(email="other@example.com")
    assert server_key.get(f"/api/customers/{other.id}/invoices/{invoices.json['items'][0]['id']}/").status_code == 404


def test_a_read_key_reads_but_may_not_write(read_key, make_user):
    user = make_user(email="c@example.com")
    assert read_key.get("/api/customers/").status_code == 200
    assert read_key.get(f"/api/customers/{user.id}/entitlements/").json["reason"] == "no_subscription"
    refused = read_key.post(f"/api/customers/{user.id}/subscription/", {"plan": "pro"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "insufficient_scope"
    assert read_key.post("/api/customers/", {"email": "x@example.com"}).status_code == 403


def test_unknown_and_revoked_keys_get_401(server_key, session, client, staff_user, clock):
    assert client.get("/api/customers/", headers={"Authorization": "Bearer sbk_nope"}).status_code == 401
    key = session.scalars(select(ServerKey)).one()
    assert tokens.revoke_server_key(session, key, clock, actor_id=staff_user.id)
    session.commit()
    revoked = server_key.get("/api/customers/")
    assert revoked.status_code == 401 and revoked.json["error"]["code"] == "unauthorized"


def test_a_customer_token_stays_in_its_own_account(customer_token, server_key, make_user):
    other = make_user(email="other@example.com")
    for path in ("/api/customers/", f"/api/customers/{other.id}/", f"/api/customers/{other.id}/entitlements/"):
        refused = customer_token.get(path)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "server_key_required"
    assert customer_token.post(f"/api/customers/{other.id}/subscription/", {"plan": "pro"}).status_code == 403
    # and a server key has no "own" account
    assert server_key.post("/api/subscribe/", {"plan": "pro"}).json["error"]["code"] == "customer_token_required"
    assert server_key.get("/api/invoices/").status_code == 403


def test_a_customer_changes_pauses_and_reads_plans(customer_token, session):
    assert customer_token.post("/api/subscribe/", {"plan": "basic"}).status_code == 201
    plans = customer_token.get("/api/plans/")
    conforms(plans, "PlanList")
    assert {p["code"] for p in plans.json["items"]} >= {"basic", "pro"}
    preview = customer_token.get("/api/subscription/preview-change/?plan=pro")
    assert preview.json["kind"] == "upgrade"
    assert customer_token.get("/api/subscription/preview-change/").status_code == 422
    assert customer_token.get("/api/subscription/preview-change/?plan=gold").status_code == 422
    assert customer_token.post("/api/subscription/change-plan/", {"plan": "pro"}).json["subscription"]["plan"] == "pro"
    assert customer_token.post("/api/subscription/pause/").status_code == 200
    assert customer_token.get("/api/entitlements/").json["reason"] == "paused"
    assert customer_token.post("/api/subscription/unpause/").status_code == 200
    assert customer_token.get("/api/entitlements/").json["entitled"] is True
    assert customer_token.post("/api/subscription/resume/").json["error"]["code"] == "not_canceling"


@pytest.mark.parametrize("path", ["/api/subscription/pause/", "/api/subscription/change-plan/"])
def test_subscription_calls_without_one_are_404(customer_token, path):
    response = customer_token.post(path, {"plan": "pro"})
    assert response.status_code == 404 and response.json["error"]["code"] == "no_subscription"


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/api/subscription/"), ("GET", "/api/billing-details/"), ("PATCH", "/api/billing-details/")],
)
def test_a_server_key_on_the_customers_own_routes_is_told_to_use_a_customer_token(server_key, method, path):
    """A server key has no "own" account: every customer-only route answers 403 saying so
    (these three answered 500)."""
    response = server_key.client.open(
        path, method=method, data="{}", headers=server_key.headers, content_type="application/json"
    )
    assert response.status_code == 403 and response.json["error"]["code"] == "customer_token_required"


def test_a_read_key_writes_with_no_method_at_all(read_key):
    """Read scope refuses every writing method, not only POST."""
    for method in ("PATCH", "PUT", "DELETE"):
        response = read_key.client.open(
            "/api/billing-details/", method=method, data="{}", headers=read_key.headers, content_type="application/json"
        )
        assert response.status_code in (403, 405) and response.status_code != 500, (method, response.status_code)
        if response.status_code == 403:
            assert response.json["error"]["code"] in ("insufficient_scope", "customer_token_required")
