"""The jobs console: queue lengths, the schedule, failed jobs; retry one, run billing now."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, make_response, redirect, url_for
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import DataRequired, ValidationError

from ..extensions import db
from ..jobs import monitor, queues, tasks
from ..runtime import now
from .base import StaffOnly, record_staff_action

BILLING_WINDOW_DAYS = 366  # how far back a run "as of" a past day may go: a year of catching up


class RunBillingForm(FlaskForm):
    as_of = DateField("Bill as of", validators=[DataRequired(message="Give the day to bill as of (YYYY-MM-DD).")])

    def validate_as_of(self, field):
        """A day within the last year, today included: the jobs compute dates from it, and a day
        like 0001-01-01 overflows them; a future day would bill before the periods are due."""
        today = now().date()
        earliest = today - dt.timedelta(days=BILLING_WINDOW_DAYS)
        if not earliest <= field.data <= today:
            raise ValidationError(
                f"Bill as of a day from {earliest.isoformat()} to today ({today.isoformat()}): "
                f"{field.data.isoformat()} is outside that window."
            )


class JobRef:
    """Audit target for actions on jobs (no database row)."""

    id = None


class JobsView(StaffOnly, BaseView):
    def _conn(self):
        return queues.connection(self.admin.app.config["REDIS_URL"])

    @expose("/")
    def index(self):
        conn = self._conn()
        try:
            monitor.requeue_all_abandoned(conn)  # workers sweep too; this shows the latest state
            context = dict(
                stats=monitor.queue_stats(conn),
                scheduled=monitor.scheduled_jobs(conn),
                failed=monitor.failed_jobs(conn),
                abandoned=monitor.abandoned_jobs(conn),
            )
        except queues.UNREACHABLE as exc:
            return self._unreachable(exc)
        return self.render(
            "staff/jobs.html",
            **context,
            form=FlaskForm(),
            run_form=RunBillingForm(as_of=now().date()),
            embedded=not self.admin.app.config["REDIS_URL"],
        )

    def _unreachable(self, exc):
        """503 with a plain page: what is down, what waits, what to check."""
        response = make_response(
            self.render("staff/jobs_unreachable.html", error=str(exc), message=queues.UNREACHABLE_MESSAGE), 503
        )
        response.headers["Retry-After"] = "30"
        return response

    def _queue_action(self, audit_action: str, detail: str, enqueue):
        """Audit and enqueue as one outcome: the audit entry is flushed in a savepoint, the job
        enqueued, and the request saves the entry; if the queue cannot be reached, the savepoint
        is rolled back and nothing is kept."""
        try:
            with db.session.begin_nested():
                record_staff_action(audit_action, JobRef(), detail)
                db.session.flush()  # an entry that cannot be saved queues no job
                result = enqueue(self._conn())
        except queues.UNREACHABLE:
            flash(f"{queues.UNREACHABLE_MESSAGE}: nothing was queued or saved. Try again when it is back.", "error")
            return None, False
        return result, True

    @expose("/retry/<job_id>", methods=("POST",))
    def retry(self, job_id):
        if not FlaskForm().validate_on_submit():
            abort(400)
        ok, reached = self._queue_action("retry_job", job_id, lambda conn: monitor.retry(conn, job_id))
        if reached:
            flash(
                "Job queued again." if ok else "That job is no longer in the failed list.", "success" if ok else "error"
            )
        return redirect(url_for(".index"))

    @expose("/run-billing", methods=("POST",))
    def run_billing(self):
        form = RunBillingForm()
        if not form.validate_on_submit():
            parsed = form.as_of.data is not None and form.as_of.errors  # a real day, outside the window
            flash(form.as_of.errors[0] if parsed else "Give the day to bill as of (YYYY-MM-DD).", "error")
            return redirect(url_for(".index"))
        day = form.as_of.data.isoformat()
        _, reached = self._queue_action(
            "run_billing",
            f"as of {day}",
            lambda conn: queues.queue(queues.BILLING, conn).enqueue(tasks.daily_billing, day),
        )
        if reached:
            flash(f"Billing as of {day} queued.", "success")
        return redirect(url_for(".index"))
