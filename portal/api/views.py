"""The JSON API: subscribe, unsubscribe, invoices, pay. Errors are always JSON."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from .. import inputs, tokens
from ..billing import customers
from ..billing.errors import BillingError
from ..billing.invoice_queries import InvoiceRow, invoice_page, own_invoice
from ..billing.invoices import unpayable_reason
from ..billing.money import format_money
from ..billing.subscriptions import cancel, find_plan, live_subscription, subscribe
from ..billing.taxes import format_percent
from ..extensions import csrf, db
from ..models import INV_STATUSES, Invoice, Subscription
from ..payments.errors import PaymentError
from ..payments.links import demo_checkout_url, return_urls
from ..payments.service import gateway, start_payment
from ..runtime import billing_settings, now
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


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "unauthorized"}
    status = exc.code or 500
    return error(status, getattr(exc, "error_code", None) or codes.get(status, "error"), exc.description or exc.name)


def api_auth(view):
    """Authorization: Bearer <token>, or the browser session (then with a CSRF header)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            # Its last-use write (at most once a minute) commits with the request.
            user = tokens.authenticate(db.session, header[7:].strip(), now())
            if user is None:
                raise ApiError(401, "unauthorized", "The API token is invalid or revoked.")
        elif current_user.is_authenticated:
            user = current_user._get_current_object()
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                try:
                    validate_csrf(request.headers.get("X-CSRFToken", ""))
                except (ValidationError, CSRFError):
                    raise ApiError(403, "csrf_failed", "Send the X-CSRFToken header with session requests.") from None
        else:
            raise ApiError(401, "unauthorized", "Send 'Authorization: Bearer <token>'.")
        g.api_user = user
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
    return out


def subscription_json(sub: Subscription) -> dict:
    return {
        "id": sub.id,
        "plan": sub.plan.code,
        "status": sub.status,
        "current_period_start": sub.current_period_start.isoformat(),
        "current_period_end": sub.current_period_end.isoformat(),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "ended_at": sub.ended_at.isoformat() if sub.ended_at else None,
        "pending_plan": sub.pending_plan.code if sub.pending_plan else None,
    }


@route("GET", "/openapi.json")
def openapi():
    return jsonify(spec())


@route("POST", "/subscribe/")
@api_auth
def api_subscribe():
    data = body()
    code = data.get("plan")
    if not isinstance(code, str) or not code.strip():
        raise ApiError(422, "invalid", "'plan' is required: one of the plan codes.")
    sub = subscribe(db.session, g.api_user, find_plan(db.session, code), now(), billing_settings())
    return jsonify(subscription_json(sub)), 201


@route("POST", "/unsubscribe/")
@api_auth
def api_unsubscribe():
    data = body()
    at_once = data.get("at_once", False)
    if not isinstance(at_once, bool):
        raise ApiError(422, "invalid", "'at_once' must be true or false.")
    sub = live_subscription(db.session, g.api_user.id)
    if sub is None:
        raise ApiError(404, "no_subscription", "You have no subscription.")
    cancel(db.session, sub, now(), at_once=at_once)
    return jsonify(subscription_json(sub))


@route("GET", "/invoices/")
@api_auth
def api_invoices():
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
    pagination = invoice_page(db.session, g.api_user.id, status, page, int(per_page))
    return jsonify(
        items=[invoice_json(i) for i in pagination.items],
        page=pagination.page,
        per_page=pagination.per_page,
        total=pagination.total,
    )


@route("GET", "/invoices/<int:invoice_id>/")
@api_auth
def api_invoice(invoice_id: int):
    return jsonify(invoice_json(own_invoice(db.session, g.api_user.id, invoice_id) or abort(404), detail=True))


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
def api_billing_details():
    return jsonify(billing_details_json(g.api_user))


@route("PATCH", "/billing-details/")
@api_auth
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
