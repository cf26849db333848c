"""Issue 12, item 13: with Redis down the console says so plainly, and each action either
completes or leaves nothing behind."""

import pytest
from sqlalchemy import func, select

from portal.billing.subscriptions import find_plan, subscribe
from portal.models import AuditEntry, Notification
from tests.conftest import free_port, utc


@pytest.fixture()
def redis_down(config):
    """REDIS_URL names a closed loopback port: a Redis that is down (the real one is left alone)."""
    config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"


def audit_actions(session):
    session.expire_all()
    return session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()


def test_the_jobs_console_answers_503_saying_the_queue_is_unreachable(client, staff, redis_down):
    response = client.get("/admin/jobs/")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "The job queue (Redis) cannot be reached" in page and "REDIS_URL" in page


def test_run_billing_now_queues_nothing_and_audits_nothing(client, staff, redis_down, session):
    response = client.post("/admin/jobs/run-billing", data={"as_of": "2024-03-01"})
    assert response.status_code == 302
    shown = client.get(response.location).get_data(as_text=True)
    assert "cannot be reached: nothing was queued or saved" in shown
    assert audit_actions(session) == []


def test_retrying_a_job_while_the_queue_is_down_saves_nothing(client, staff, redis_down, session):
    response = client.post("/admin/jobs/retry/some-job-id")
    assert response.status_code == 302
    assert "nothing was queued or saved" in client.get(response.location).get_data(as_text=True)
    assert audit_actions(session) == []


def test_a_reminder_is_kept_in_the_outbox_and_the_staff_are_told_it_is_not_sent_now(
    client, staff, redis_down, session, make_user, settings
):
    subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 2, 1, 9), settings)
    session.commit()
    response = client.post("/admin/invoice/action/", data={"action": "remind", "rowid": ["1"]})
    assert response.status_code == 302
    shown = client.get(response.location).get_data(as_text=True)
    assert "1 reminder(s) saved in the outbox, but not sent now" in shown
    assert "cannot be reached" in shown
    # What the message says was saved is saved: the notice (delivered by the outbox run) and its audit entry.
    assert (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "reminder", Notification.sent_at.is_(None))
        )
        == 1
    )
    assert audit_actions(session) == ["send_reminder"]
