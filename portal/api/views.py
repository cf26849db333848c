"""The JSON API: subscribe, unsubscribe, invoices, pay. Errors are always JSON."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from .. import idempotency, inputs, limits, tokens
from ..billing import customers, entitlements
from ..billing.collection import attempts_of, default_card
from ..billing.credits import credit_notes_of, refunds_of
from ..billing.documents import INVOICE, RECEIPT, invoice_document
from ..billing.errors import BillingError
from ..billing.invoice_queries import InvoiceRow, invoice_page, own_invoice
from ..billing.invoices import unpayable_reason
from ..billing.money import format_money
from ..billing.pricing import next_period_price, paid_price, price_change_date
from ..billing.subscriptions import (
    PlanChange,
    cancel,
    change_plan,
    find_plan,
    live_subscription,
    pause,
    preview_change,
    resume,
    subscribe,
    unpause,
)
from ..billing.taxes import format_percent
from ..documents import pdf
from ..extensions import csrf, db
from ..models import INV_STATUSES, SCOPE_WRITE, Invoice, Plan, ServerKey, Subscription, User
from ..payments.errors import PaymentError
from ..payments.links import demo_checkout_url, return_urls
from ..payments.service import gateway, start_payment
from ..runtime import billing_settings, now, seller
from .openapi import spec

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # bearer tokens need no CSRF; session callers are checked in api_auth


def route(method: str, rule: str):
    """Register a view under its rule and the same rule without the trailing slash: a 308 to
    the other spelling is an HTML body that clients do not follow with a POST body.
    (Werkzeug's strict_slashes=False would match too, but then gives a wrong method a 404,
    not a 405, and OPTIONS an empty Allow.) '//' is not merged by a redirect either: a 404."""

    def register(view):
        for spelling in dict.fromkeys((rule, rule.rstrip("/") or rule)):  # url_for uses the first
            bp.add_url_rule(spelling, view_func=view, methods=[method], merge_slashes=False)
        return view

    return register


@bp.after_request
def _options_answer(response):
    """Flask answers OPTIONS itself with an empty 200 text/html: an empty 204 with Allow instead."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.is_json:
        response.status_code = 204
        response.set_data(b"")
        for header in ("Content-Type", "Content-Length"):
            response.headers.pop(header, None)
    return response


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error(status: int, code: str, message: str):
    return jsonify(error={"code": code, "message": message}), status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return error(exc.status, exc.code, exc.message)


@bp.errorhandler(BillingError)
def _billing_error(exc: BillingError):
    return error(exc.status, exc.code, exc.message)


@bp.errorhandler(429)
def _too_many_requests(exc: HTTPException):
    wait = limits.retry_after()
    response, status = error(429, "rate_limited", f"Too many requests ({exc.description}); retry in {wait} s.")
    response.headers["Retry-After"] = str(wait)
    return response, status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "unauthorized"}
    status = exc.code or 500
    return error(status, getattr(exc, "error_code", None) or codes.get(status, "error"), exc.description or exc.name)


def api_auth(view):
    """Authorization: Bearer <token or server key>, or the browser session (then with a CSRF header).

    Sets g.api_user (the customer a token or session acts as; None for a server key) and
    g.server_key. A read-scoped server key may not POST. A POST with an Idempotency-Key
    header answers a repeat with the first answer (portal/idempotency.py).
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        server_key = None
        if header.startswith("Bearer "):
            # Its last-use write (at most once a minute) commits with the request.
            found = tokens.authenticate_any(db.session, header[7:].strip(), now())
            if found is None:
                raise ApiError(401, "unauthorized", "The API token is invalid or revoked.")
            user, server_key = (None, found) if isinstance(found, ServerKey) else (found, None)
        elif current_user.is_authenticated:
            user = current_user._get_current_object()
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                try:
                    validate_csrf(request.headers.get("X-CSRFToken", ""))
                except (ValidationError, CSRFError):
                    raise ApiError(403, "csrf_failed", "Send the X-CSRFToken header with session requests.") from None
        else:
            raise ApiError(401, "unauthorized", "Send 'Authorization: Bearer <token>'.")
        if server_key is not None and server_key.scope != SCOPE_WRITE and request.method not in SAFE_METHODS:
            raise ApiError(403, "insufficient_scope", "This server key may only read; writing needs a write key.")
        g.api_user, g.server_key = user, server_key
        if request.method == "POST" and IDEMPOTENCY_HEADER in request.headers:
            principal = server_key or user
            assert principal is not None  # one of the two, set just above
            return _idempotent(view, args, kwargs, principal)
        return view(*args, **kwargs)

    return wrapper


IDEMPOTENCY_HEADER = "Idempotency-Key"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _idempotent(view, args, kwargs, principal: User | ServerKey):
    """Run a POST once per Idempotency-Key: a repeat gets the first answer, another body a 422."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if not (1 <= len(key) <= idempotency.MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"'{IDEMPOTENCY_HEADER}' must be 1 to {idempotency.MAX_KEY_LENGTH} printable ASCII characters.",
        )
    name = f"{'server_key' if isinstance(principal, ServerKey) else 'user'}:{principal.id}"
    fingerprint = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
    try:
        claim = idempotency.claim(db.session, name, key, fingerprint, now())
    except idempotency.KeyReused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    if isinstance(claim, idempotency.Replay):
        response = current_app.response_class(claim.body, status=claim.status, mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response
    response = current_app.make_response(view(*args, **kwargs))
    if response.status_code < 400:  # an error rolls back, the key with it: a retry runs again
        idempotency.remember(db.session, claim, response.status_code, response.get_data(as_text=True))
    return response


def customer_only(view):
    """An endpoint acting on the caller's own account: a server key names the customer instead."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.server_key is not None:
            raise ApiError(
                403,
                "customer_token_required",
                "This endpoint acts on the caller's own account; a server key uses /api/customers/<id>/... instead.",
            )
        return view(*args, **kwargs)

    return wrapper


def body() -> dict:
    """The JSON object sent (empty body: {}), checked by the shared reader in portal.inputs."""
    raw = request.get_data(cache=True)
    if not request.is_json and (raw or request.form or request.files):
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.")
    if not raw:
        return {}
    data = inputs.json_body()
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The request body must be a JSON object.")
    return data


def invoice_json(inv: Invoice | InvoiceRow, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inv.id,
        "number": inv.number,
        "status": inv.status,
        "kind": inv.kind,
        "description": inv.description,
        "period_start": inv.period_start.isoformat(),
        "period_end": inv.period_end.isoformat(),
        "total": inv.total,
        "subtotal": inv.subtotal_cents,
        "tax": inv.tax_cents,
        "currency": inv.currency,
        "total_display": format_money(inv.total, inv.currency),
        "issued_at": inv.issued_at.isoformat(),
        "due_date": inv.due_date.isoformat(),
        "paid_at": inv.paid_at.isoformat() if inv.paid_at else None,
    }
    if detail and isinstance(inv, Invoice):  # one invoice, with its lines and payments
        out["lines"] = [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "amount": line.amount,
                "period_start": line.period_start.isoformat() if line.period_start else None,
                "period_end": line.period_end.isoformat() if line.period_end else None,
                "tax": line.tax_cents,
                "tax_rate_percent": format_percent(line.tax_rate_percent),
                "tax_name": line.tax_name,
                "kind": "discount" if line.coupon_id else "item",
            }
            for line in inv.display_lines
        ]
        out["tax_note"] = inv.tax_note or None
        out["payments"] = [
            {
                "id": p.id,
                "provider": p.provider,
                "amount": p.amount,
                "currency": p.currency,
                "status": p.status,
                "created_at": p.created_at.isoformat(),
            }
            for p in inv.payments
        ]
        out["payment_attempts"] = [
            {
                "attempt": a.attempt,
                "created_at": a.created_at.isoformat(),
                "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                "status": a.status,
                "amount": a.amount,
                "failure_code": a.failure_code,
                "failure_reason": a.failure_reason,
                "next_attempt_at": a.next_attempt_at.isoformat() if a.next_attempt_at else None,
            }
            for a in attempts_of(db.session, inv.id)
        ]
        # Corrections (billing/credits.py): what credit notes took off, what the balance paid, what is due.
        out["credited"] = inv.credited_cents
        out["credit_applied"] = inv.credit_applied_cents
        out["amount_due"] = inv.amount_due
        out["credit_notes"] = [
            {
                "id": n.id,
                "number": n.number,
                "issued_at": n.issued_at.isoformat(),
                "reason": n.reason,
                "outcome": n.outcome,
                "subtotal": n.subtotal_cents,
                "tax": n.tax_cents,
                "total": n.total,
                "currency": n.currency,
                "lines": [
                    {"description": line.description, "amount": line.amount, "tax": line.tax_cents} for line in n.lines
                ],
            }
            for n in credit_notes_of(db.session, inv.id)
        ]
        out["refunds"] = [
            {
                "id": r.id,
                "amount": r.amount,
                "currency": r.currency,
                "status": r.status,
                "created_at": r.created_at.isoformat(),
            }
            for r in refunds_of(db.session, inv.id)
        ]
    return out


def subscription_json(sub: Subscription) -> dict:
    card = default_card(db.session, sub.user_id)
    return {
        "id": sub.id,
        "plan": sub.plan.code,
        "status": sub.status,
        "current_period_start": sub.current_period_start.isoformat(),
        "current_period_end": sub.current_period_end.isoformat(),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "ended_at": sub.ended_at.isoformat() if sub.ended_at else None,
        "pending_plan": sub.pending_plan.code if sub.pending_plan else None,
        "customer_id": sub.user_id,
        "paused_at": sub.paused_at.isoformat() if sub.paused_at else None,
        "collection_method": sub.collection_method,
        "price": paid_price(sub),
        "currency": sub.plan.currency,
        "interval": "month" if sub.interval_months == 1 else "year",
        "next_price": next_period_price(sub),
        "price_change": (
            {"price": sub.pending_price, "on": changes_on.isoformat()}
            if (changes_on := price_change_date(sub)) is not None
            else None
        ),
        "payment_method": (
            {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year}
            if card is not None
            else None
        ),
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "price": plan.price,
        "currency": plan.currency,
        "price_display": format_money(plan.price, plan.currency),
        "interval": plan.interval,
        "trial_days": plan.trial_days,
        "features": dict(plan.features or {}),
    }


def change_json(change: PlanChange, invoice: Invoice | None = None, sub: Subscription | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": change.kind,
        "amount": change.amount,
        "currency": change.currency,
        "amount_display": format_money(change.amount, change.currency),
        "days_left": change.days_left,
        "period_days": change.period_days,
        "effective": change.effective.isoformat(),
        "credit": change.credit,
        "new_period_end": change.new_period_end.isoformat() if change.new_period_end else None,
    }
    if sub is not None:
        out["subscription"] = subscription_json(sub)
        out["invoice"] = invoice_json(invoice, detail=True) if invoice is not None else None
    return out


def entitlements_json(ent: entitlements.Entitlements) -> dict[str, Any]:
    return {
        "customer_id": ent.customer_id,
        "entitled": ent.entitled,
        "reason": ent.reason,
        "plan": ent.plan,
        "status": ent.status,
        "paused": ent.paused,
        "features": ent.features,
    }


@route("GET", "/openapi.json")
def openapi():
    return jsonify(spec())


@route("GET", "/subscription/")
@api_auth
@customer_only
def api_subscription():
    sub = live_subscription(db.session, g.api_user.id)
    if sub is None:
        raise ApiError(404, "no_subscription", "You have no subscription.")
    return jsonify(subscription_json(sub))


@route("POST", "/subscribe/")
@api_auth
@customer_only
def api_subscribe():
    return subscribe_for(g.api_user)


@route("POST", "/unsubscribe/")
@api_auth
@customer_only
def api_unsubscribe():
    return cancel_for(g.api_user)


def plan_from_body() -> Plan:
    code = body().get("plan")
    if not isinstance(code, str) or not code.strip():
        raise ApiError(422, "invalid", "'plan' is required: one of the plan codes.")
    return find_plan(db.session, code)


def live_for(user: User) -> Subscription:
    sub = live_subscription(db.session, user.id)
    if sub is None:
        raise ApiError(404, "no_subscription", "There is no live subscription.")
    return sub


# What a customer (for their own account) and a server key (for any customer) may do, once.


def promotion_code_from_body() -> str | None:
    code = body().get("promotion_code")
    if code is None:
        return None
    if not isinstance(code, str):
        raise ApiError(422, "invalid", "'promotion_code' must be a string.")
    return code


def subscribe_for(user: User):
    code = promotion_code_from_body()
    sub = subscribe(db.session, user, plan_from_body(), now(), billing_settings(), promotion_code=code)
    return jsonify(subscription_json(sub)), 201


def cancel_for(user: User):
    at_once = body().get("at_once", False)
    if not isinstance(at_once, bool):
        raise ApiError(422, "invalid", "'at_once' must be true or false.")
    sub = live_for(user)
    cancel(db.session, sub, now(), at_once=at_once)
    return jsonify(subscription_json(sub))


def subscription_for(user: User):
    return jsonify(subscription_json(live_for(user)))


def preview_for(user: User):
    code = request.args.get("plan", "")
    if not code.strip():
        raise ApiError(422, "invalid", "'plan' is required: one of the plan codes.")
    sub = live_for(user)
    return jsonify(change_json(preview_change(sub, find_plan(db.session, code), now().date())))


def change_plan_for(user: User):
    plan = plan_from_body()
    sub = live_for(user)
    change, invoice = change_plan(db.session, sub, plan, now(), billing_settings())
    return jsonify(change_json(change, invoice, sub))


def resume_for(user: User):
    body()
    sub = live_for(user)
    resume(db.session, sub, now())
    return jsonify(subscription_json(sub))


def pause_for(user: User):
    body()
    sub = live_for(user)
    pause(db.session, sub, now())
    return jsonify(subscription_json(sub))


def unpause_for(user: User):
    body()
    sub = live_for(user)
    unpause(db.session, sub, now())
    return jsonify(subscription_json(sub))


def entitlements_for(user: User):
    return jsonify(entitlements_json(entitlements.for_customer(db.session, user.id, now())))


def invoices_for(user: User):
    status = request.args.get("status")
    if status is not None and status not in INV_STATUSES:
        raise ApiError(422, "invalid", f"'status' must be one of: {', '.join(INV_STATUSES)}.")
    try:
        page = inputs.page_number(request.args.get("page"))
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    per_page = request.args.get("per_page", "20")
    if not (per_page.isascii() and per_page.isdigit() and 1 <= int(per_page) <= 100):
        raise ApiError(422, "invalid", "'per_page' must be a whole number from 1 to 100.")
    pagination = invoice_page(db.session, user.id, status, page, int(per_page))
    return jsonify(
        items=[invoice_json(i) for i in pagination.items],
        page=pagination.page,
        per_page=pagination.per_page,
        total=pagination.total,
    )


def invoice_for(user: User, invoice_id: int):
    return jsonify(invoice_json(own_invoice(db.session, user.id, invoice_id) or abort(404), detail=True))


@route("GET", "/plans/")
@api_auth
def api_plans():
    plans = db.session.scalars(select(Plan).where(Plan.active).order_by(Plan.sort_order, Plan.price, Plan.id))
    return jsonify(items=[plan_json(p) for p in plans])


@route("GET", "/subscription/preview-change/")
@api_auth
@customer_only
def api_preview_change():
    return preview_for(g.api_user)


@route("POST", "/subscription/change-plan/")
@api_auth
@customer_only
def api_change_plan():
    return change_plan_for(g.api_user)


@route("POST", "/subscription/resume/")
@api_auth
@customer_only
def api_resume():
    return resume_for(g.api_user)


@route("POST", "/subscription/pause/")
@api_auth
@customer_only
def api_pause():
    return pause_for(g.api_user)


@route("POST", "/subscription/unpause/")
@api_auth
@customer_only
def api_unpause():
    return unpause_for(g.api_user)


@route("GET", "/entitlements/")
@api_auth
@customer_only
def api_entitlements():
    return entitlements_for(g.api_user)


@route("GET", "/invoices/")
@api_auth
@customer_only
def api_invoices():
    return invoices_for(g.api_user)


@route("GET", "/invoices/<int:invoice_id>/")
@api_auth
@customer_only
def api_invoice(invoice_id: int):
    return invoice_for(g.api_user, invoice_id)


@route("GET", "/invoices/<int:invoice_id>/pdf")
@api_auth
@customer_only
def api_invoice_pdf(invoice_id: int):
    invoice = own_invoice(db.session, g.api_user.id, invoice_id) or abort(404)
    return pdf.download(invoice_document(invoice, seller()), INVOICE)


@route("GET", "/invoices/<int:invoice_id>/receipt/pdf")
@api_auth
@customer_only
def api_receipt_pdf(invoice_id: int):
    invoice = own_invoice(db.session, g.api_user.id, invoice_id) or abort(404)
    doc = invoice_document(invoice, seller())
    if not doc.is_paid:
        raise ApiError(404, "not_paid", "This invoice is not paid: it has no receipt yet.")
    return pdf.download(doc, RECEIPT)


def billing_details_json(user) -> dict[str, Any]:
    details = customers.details_of(user)
    return {
        "name": details.name,
        "company": details.company,
        "address": details.address,
        "country": details.country,
        "tax_id": details.tax_id,
    }


@route("GET", "/billing-details/")
@api_auth
@customer_only
def api_billing_details():
    return jsonify(billing_details_json(g.api_user))


@route("PATCH", "/billing-details/")
@api_auth
@customer_only
def api_update_billing_details():
    """Change the fields sent (null or "" clears one); the others stay as they are."""
    data = body()
    unknown = sorted(set(data) - set(customers.DETAIL_FIELDS))
    if unknown:
        raise ApiError(
            422,
            "invalid",
            f"Unknown field(s): {', '.join(unknown)}; send any of: {', '.join(customers.DETAIL_FIELDS)}.",
        )
    merged = {**billing_details_json(g.api_user), **{k: ("" if v is None else v) for k, v in data.items()}}
    errors = customers.update_details(db.session, g.api_user, merged)
    if errors:
        raise ApiError(422, "invalid", " ".join(f"{field}: {message}" for field, message in errors.items()))
    return jsonify(billing_details_json(g.api_user))


@route("POST", "/pay/")
@api_auth
@customer_only
def api_pay():
    data = body()
    invoice_id = data.get("invoice_id")
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
        raise ApiError(422, "invalid", "'invoice_id' must be an integer.")
    invoice = own_invoice(db.session, g.api_user.id, invoice_id) or abort(404)
    if reason := unpayable_reason(invoice):
        raise ApiError(409, "not_payable", reason)
    try:
        checkout = start_payment(
            db.session, invoice, g.api_user, gateway(current_app.config, demo_checkout_url), *return_urls(invoice.id)
        )
    except PaymentError as exc:  # the 502 rolls back whatever the attempt wrote
        raise ApiError(502, "payment_provider_error", str(exc)) from None
    return jsonify(checkout_url=checkout.url, invoice_id=invoice.id)


from . import server  # noqa: E402, F401  (registers the server-key routes on bp)
