"""The staff console: Flask-Admin views, built per app in init_admin(app).

One module per job: base (access, the model view base, formatters), customers, plans, taxes,
subscriptions, invoices, records (read-only), jobs, webhooks (outbound), dashboard. Staff actions call the
billing core, which writes their audit entries; the request's unit of work commits.
"""

from __future__ import annotations

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from ..billing.seller import Seller
from ..extensions import db
from ..models import (
    AuditEntry,
    Coupon,
    CouponRedemption,
    Invoice,
    Notification,
    Payment,
    Plan,
    PromotionCode,
    ServerKey,
    Subscription,
    TaxRate,
    User,
    WebhookEvent,
)
from ..security import csp_nonce
from .coupons import CouponRedemptionView, CouponView, PromotionCodeView
from .customers import UserView
from .dashboard import Dashboard
from .invoices import InvoiceView
from .jobs import JobsView
from .plans import PlanView
from .records import AuditView, NotificationView, PaymentView, WebhookEventView
from .server_keys import ServerKeyView
from .subscriptions import SubscriptionView
from .taxes import TaxRateView
from .webhooks import WebhooksView


def init_admin(app) -> Admin:
    admin = Admin(
        app,
        name=f"{Seller.from_config(app.config).name} · Staff",
        theme=Bootstrap4Theme(swatch="default", fluid=True, base_template="staff/master.html"),
        index_view=Dashboard(name="Dashboard", url="/admin"),
        csp_nonce_generator=csp_nonce,
    )
    for view in (
        UserView(User, db, name="Users"),
        PlanView(Plan, db, name="Plans"),
        TaxRateView(TaxRate, db, name="Tax rates", endpoint="taxrate"),
        SubscriptionView(Subscription, db, name="Subscriptions"),
        InvoiceView(Invoice, db, name="Invoices"),
        PaymentView(Payment, db, name="Payments"),
        NotificationView(Notification, db, name="Notices"),
        WebhookEventView(WebhookEvent, db, name="Webhooks"),
        AuditView(AuditEntry, db, name="Audit log"),
        JobsView(name="Jobs", endpoint="jobs"),
        ServerKeyView(ServerKey, db, name="Server keys", endpoint="server_keys"),
        CouponView(Coupon, db, name="Coupons", category="Discounts"),
        PromotionCodeView(PromotionCode, db, name="Promotion codes", category="Discounts"),
        CouponRedemptionView(CouponRedemption, db, name="Redemptions", category="Discounts"),
        WebhooksView(name="Outbound webhooks", endpoint="outbound", url="/admin/outbound-webhooks"),
    ):
        admin.add_view(view)
    return admin
