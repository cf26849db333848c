"""Read-only records: payments, notices, webhooks received and the audit log."""

from __future__ import annotations

from markupsafe import Markup, escape

from ..billing.statuses import PAYMENT_LABELS
from .base import ReadOnlyView, money


class PaymentView(ReadOnlyView):
    column_list = ("id", "invoice", "provider", "provider_ref", "amount", "status", "flag", "note", "created_at")
    column_formatters = {"amount": money}
    column_filters = ("provider", "status", "flag")
    column_choices = {"status": list(PAYMENT_LABELS.items())}
    column_searchable_list = ("provider_ref",)


class NotificationView(ReadOnlyView):
    column_list = ("id", "user", "invoice", "kind", "step", "subject", "created_at", "sent_at", "attempts", "error")
    column_filters = ("kind", "user.email")


class WebhookEventView(ReadOnlyView):
    column_list = ("provider_event_id", "type", "received_at", "processed_at", "error")
    column_filters = ("type",)
    column_formatters_detail = {"payload": lambda v, c, m, n: Markup(f"<pre>{escape(m.payload)}</pre>")}


class AuditView(ReadOnlyView):
    column_list = ("created_at", "actor", "action", "object_type", "object_id", "detail")
    column_default_sort = ("id", True)
    column_filters = ("action", "object_type", "actor.email")
