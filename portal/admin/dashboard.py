"""The console's front page: the business at a glance."""

from __future__ import annotations

from flask import flash
from flask_admin import AdminIndexView, expose

from ..billing import collection, reports
from ..extensions import db
from ..jobs import monitor, queues
from ..runtime import now
from .base import StaffOnly


class Dashboard(StaffOnly, AdminIndexView):
    @expose("/")
    def index(self):
        today = now().date()
        revenue = reports.revenue_by_month(db.session, today)
        peak = max([sum(m["amounts"].values()) for m in revenue] + [1])
        failed = []
        try:
            failed = monitor.failed_jobs(queues.connection(self.admin.app.config["REDIS_URL"]), limit=5)
        except Exception:  # Redis down must not take the dashboard with it
            flash("The job queue could not be reached.", "error")
        return self.render(
            "staff/dashboard.html",
            mrr=reports.mrr_by_plan(db.session),
            receivables=reports.receivables(db.session),
            revenue=revenue,
            peak=peak,
            due=reports.due_soon(db.session, today),
            failed=failed,
            flagged=reports.flagged_payments(db.session),
            charges=collection.recovery(db.session, now()),
            today=today,
        )
