"""Staff actions on a subscription write their audit entry in the same core call (issue 13).

Given an `actor_id`, cancel() and change_plan() record who did what, with the details
the console used to write itself; a customer's own action (no actor) is not audited,
and a refused action records nothing.
"""

import pytest
from sqlalchemy import select

from portal.billing import catalog
from portal.billing.errors import BillingError
from portal.billing.subscriptions import cancel, change_plan, find_plan, subscribe
from portal.models import AuditEntry
from tests.conftest import utc

NOW = utc(2024, 1, 20, 9)


@pytest.fixture()
def staff_id(make_user):
    return make_user(email="staff@example.com", is_staff=True).id


@pytest.fixture()
def sub(session, make_user, settings):
    return subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10, 9), settings)


def entries(session):
    return session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()


@pytest.mark.parametrize("at_once, action", [(False, "cancel_at_period_end"), (True, "cancel_now")])
def test_cancel_by_staff_is_audited(session, sub, staff_id, at_once, action):
    cancel(session, sub, NOW, at_once=at_once, actor_id=staff_id)
    [entry] = entries(session)
    assert (entry.actor_id, entry.action, entry.object_type) == (staff_id, action, "Subscription")
    assert entry.object_id == sub.id
    assert entry.created_at == NOW and entry.detail == ""


def test_a_customer_cancelling_is_not_audited(session, sub):
    cancel(session, sub, NOW)
    assert sub.cancel_at_period_end and entries(session) == []


def test_a_refused_cancel_records_nothing(session, sub, staff_id):
    cancel(session, sub, NOW, at_once=True)
    with pytest.raises(BillingError, match="already ended"):
        cancel(session, sub, NOW, actor_id=staff_id)
    assert entries(session) == []


def test_an_upgrade_by_staff_names_the_plan_and_the_prorated_invoice(session, sub, staff_id, settings):
    change, invoice = change_plan(session, sub, find_plan(session, "enterprise"), NOW, settings, actor_id=staff_id)
    [entry] = entries(session)
    assert (entry.actor_id, entry.action, entry.object_type) == (staff_id, "change_plan", "Subscription")
    assert entry.object_id == sub.id
    assert change.kind == "upgrade" and entry.detail == f"to enterprise (upgrade, invoice {invoice.number})"


def test_a_downgrade_by_staff_is_audited_without_an_invoice(session, sub, staff_id, settings):
    _, invoice = change_plan(session, sub, find_plan(session, "basic"), NOW, settings, actor_id=staff_id)
    assert invoice is None and [e.detail for e in entries(session)] == ["to basic (downgrade)"]


def test_a_refused_change_records_nothing_and_a_customer_changing_plan_is_not_audited(session, sub, staff_id, settings):
    with pytest.raises(BillingError, match="already on the Pro plan"):
        change_plan(session, sub, find_plan(session, "pro"), NOW, settings, actor_id=staff_id)
    change_plan(session, sub, find_plan(session, "basic"), NOW, settings)
    assert sub.plan.code == "basic" and entries(session) == []


def test_archiving_a_plan_is_audited_once(session, make_user):
    staff = make_user(email="staff@example.com", is_staff=True)
    pro = find_plan(session, "pro")
    assert catalog.archive(session, pro, utc(2024, 2, 1), staff.id) is True
    assert catalog.archive(session, pro, utc(2024, 2, 2), staff.id) is False  # archived already
    session.commit()
    [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.object_type, entry.object_id, entry.actor_id) == ("archive", "Plan", pro.id, staff.id)
    assert pro.active is False
