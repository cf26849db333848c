import csv
import io
import json

from sqlalchemy import func, select

from portal.billing.subscriptions import find_plan, subscribe
from portal.models import Invoice, Plan, Subscription, User
from tests.conftest import utc


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_billing_run_as_of_prints_json_counts(runner, session, make_user, settings):
    subscribe(session, make_user(), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    session.commit()
    result = runner.invoke(args=["billing", "run", "--as-of", "2024-02-10", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts["as_of"] == "2024-02-10" and counts["invoices"] == 1 and counts["overdue"] == 1
    assert counts["notices_sent"] == 3  # two issued notices and the overdue step
    again = json.loads(
        runner.invoke(args=["billing", "run", "--as-of", "2024-02-10", "--json"]).output.splitlines()[-1]
    )
    assert again["invoices"] == 0 and again["notices_sent"] == 0


def test_billing_run_rejects_a_malformed_date(runner):
    result = runner.invoke(args=["billing", "run", "--as-of", "2024-13-01"])
    assert result.exit_code == 2 and "Invalid value for '--as-of'" in result.output


def test_plans_seed_is_idempotent(runner, session):
    assert "0 created, 6 already there" in runner.invoke(args=["plans", "seed"]).output
    assert count(session, Plan) == 6  # three plans, each monthly and yearly


def test_import_creates_users_and_counts_paid_periods(runner, session, tmp_path, make_user):
    f = tmp_path / "subs.csv"
    f.write_text(
        "email,plan,start_date,paid_through\n"
        "Ada@Example.com,pro,2024-01-31,2024-03-31\n"
        "bob@example.com,basic,2024-02-15,\n"
    )
    result = runner.invoke(args=["subscriptions", "import", str(f)])
    assert result.exit_code == 0, result.output
    assert "Imported 2 subscriptions (2 new customers)" in result.output
    ada = session.scalar(select(User).where(User.email == "ada@example.com"))
    assert ada.password_hash is None
    sub = session.scalar(select(Subscription).where(Subscription.user_id == ada.id))
    assert sub.next_period == 2 and str(sub.next_period_start) == "2024-03-31"
    runner.invoke(args=["billing", "run", "--as-of", "2024-04-01"])
    starts = session.scalars(select(Invoice.period_start).where(Invoice.user_id == ada.id)).all()
    assert [str(s) for s in starts] == ["2024-03-31"]  # Jan and Feb were paid elsewhere


def test_import_with_bad_rows_writes_nothing_and_names_the_lines(runner, session, tmp_path, make_user, settings):
    taken = make_user(email="taken@example.com")
    subscribe(session, taken, find_plan(session, "pro"), utc(2024, 1, 1), settings)
    session.commit()
    before = (count(session, User), count(session, Subscription))
    f = tmp_path / "subs.csv"
    f.write_text(
        "email,plan,start_date\n"
        "good@example.com,pro,2024-01-01\n"
        "nobody,pro,2024-01-01\n"
        "x@example.com,gold,2024-01-01\n"
        "y@example.com,pro,2024-02-30\n"
        "taken@example.com,basic,2024-01-01\n"
    )
    result = runner.invoke(args=["subscriptions", "import", str(f)])
    assert result.exit_code == 1
    assert "line 3:" in result.output and "line 4: Unknown plan 'gold'" in result.output
    assert "line 5: start_date '2024-02-30' is not a date" in result.output
    assert "line 6: You already have a subscription" in result.output
    assert "4 bad row(s); nothing was imported." in result.output
    assert (count(session, User), count(session, Subscription)) == before


def test_import_without_required_columns(runner, tmp_path):
    f = tmp_path / "subs.csv"
    f.write_text("mail,plan\nx@example.com,pro\n")
    result = runner.invoke(args=["subscriptions", "import", str(f)])
    assert result.exit_code == 1 and "missing column(s): email, start_date" in result.output


def test_invoices_export_csv_and_json(runner, session, make_user, settings):
    subscribe(session, make_user(email="ada@example.com"), find_plan(session, "pro"), utc(2024, 1, 10), settings)
    session.commit()
    rows = list(csv.DictReader(io.StringIO(runner.invoke(args=["invoices", "export"]).output)))
    assert rows == [
        {
            "number": "INV-000001",
            "email": "ada@example.com",
            "plan": "pro",
            "period_start": "2024-01-10",
            "period_end": "2024-02-10",
            "total": "2900",
            "currency": "USD",
            "status": "open",
            "due_date": "2024-01-24",
            "paid_at": "",
            "subtotal": "2900",
            "tax": "0",
            "billing_country": "",
            "tax_id": "",
        }
    ]
    data = json.loads(runner.invoke(args=["invoices", "export", "--format", "json"]).output)
    assert data[0]["number"] == "INV-000001" and data[0]["total"] == 2900 and data[0]["paid_at"] is None


def test_create_staff(runner, session):
    result = runner.invoke(args=["users", "create-staff", "Boss@Example.com", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(User).where(User.email == "boss@example.com")).is_staff
    short = runner.invoke(args=["users", "create-staff", "b@example.com", "--password", "short"])
    assert short.exit_code == 2 and "at least 8 characters" in short.output


def test_demo_setup_creates_a_missing_instance_folder(app, session, tmp_path):
    from flask import Flask  # noqa: F401

    folder = tmp_path / "not" / "yet"
    saved = app.instance_path
    app.instance_path = str(folder)
    try:
        result = app.test_cli_runner().invoke(args=["demo-setup"])
    finally:
        app.instance_path = saved
    assert result.exit_code == 0, result.output
    assert (folder / "staff-login.txt").exists() and "Staff login: admin@example.com" in result.output


def test_billing_run_charges_saved_cards_and_retries_on_schedule(runner, session, make_user, settings):
    from portal.billing.collection import CardDetails, save_card

    good, bad = make_user(email="good@example.com"), make_user(email="bad@example.com")
    for user, card in ((good, "pm_demo_ok_1"), (bad, "pm_demo_decline_1")):
        subscribe(session, user, find_plan(session, "pro"), utc(2024, 1, 10), settings)
        save_card(session, user.id, CardDetails("demo", card, "visa", card[-4:], 12, 2034), utc(2024, 1, 10))
    session.commit()

    def run(day):
        result = runner.invoke(args=["billing", "run", "--as-of", day, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    first = run("2024-01-10")  # both first invoices: one paid, one declined
    assert (first["charges_attempted"], first["charges_succeeded"], first["charges_failed"]) == (2, 1, 1)
    assert run("2024-01-10")["charges_attempted"] == 0  # run again: nothing twice
    retry = run("2024-01-11")  # the declined one's first retry day
    assert (retry["charges_attempted"], retry["charges_failed"]) == (1, 1)
    assert run("2024-01-12")["charges_attempted"] == 0  # next retry on the 13th (3 days after)
    assert run("2024-01-13")["charges_attempted"] == 1
    statuses = dict(session.execute(select(Invoice.user_id, Invoice.status)).all())
    assert statuses == {good.id: "paid", bad.id: "open"}
