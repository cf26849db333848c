"""What each status is called where people read it: the portal, the console, the templates.

The values are defined with the models (portal/models.py), where the database checks
them; their labels are written here once. Each mapping is in display order (the order
of filter choices), which is why invoices list the two payable statuses first.
"""

from __future__ import annotations

from ..models import (
    INV_OPEN,
    INV_OVERDUE,
    INV_PAID,
    INV_VOID,
    PAY_FAILED,
    PAY_PENDING,
    PAY_SUCCEEDED,
    SUB_ACTIVE,
    SUB_CANCELED,
    SUB_PAST_DUE,
    SUB_TRIALING,
)

INVOICE_LABELS = {INV_OPEN: "Open", INV_OVERDUE: "Overdue", INV_PAID: "Paid", INV_VOID: "Void"}
SUBSCRIPTION_LABELS = {
    SUB_TRIALING: "Trial",
    SUB_ACTIVE: "Active",
    SUB_PAST_DUE: "Past due",
    SUB_CANCELED: "Canceled",
}
PAYMENT_LABELS = {PAY_SUCCEEDED: "Succeeded", PAY_PENDING: "Pending", PAY_FAILED: "Failed"}
