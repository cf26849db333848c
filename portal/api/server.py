"""The server-key endpoints: the company's own programs act on any customer.

Every route here needs a server key (a customer's token or session gets 403); a read key
may GET, a write key may also POST. The actions are the customer's own, run for the
customer named in the path (views.*_for), so both act by the same rules.
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import inputs, users
from ..extensions import db
from ..models import User
from ..runtime import now
from .views import (
    ApiError,
    api_auth,
    body,
    cancel_for,
    change_plan_for,
    entitlements_for,
    invoice_for,
    invoices_for,
    pause_for,
    preview_for,
    resume_for,
    route,
    subscribe_for,
    subscription_for,
    unpause_for,
)


def server_only(view):
    """After api_auth: only a server key may call these."""

    def wrapper(*args, **kwargs):
        if g.server_key is None:
            raise ApiError(403, "server_key_required", "This endpoint needs a server key (created by staff).")
        return view(*args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def customer_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "created_at": user.created_at.isoformat(),
    }


def customer(customer_id: int) -> User:
    user = db.session.get(User, customer_id)
    if user is None or user.is_staff:
        raise ApiError(404, "not_found", "No customer with this id.")
    return user


@route("GET", "/customers/")
@api_auth
@server_only
def api_customers():
    try:
        page = inputs.page_number(request.args.get("page"))
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    per_page = request.args.get("per_page", "50")
    if not (per_page.isascii() and per_page.isdigit() and 1 <= int(per_page) <= 100):
        raise ApiError(422, "invalid", "'per_page' must be a whole number from 1 to 100.")
    size = int(per_page)
    where = [~User.is_staff]
    if (email := request.args.get("email")) is not None:
        inputs.check_text(email, "email")
        where.append(User.email == email.strip().lower())
    total = db.session.scalar(select(func.count()).select_from(User).where(*where)) or 0
    rows = db.session.scalars(select(User).where(*where).order_by(User.id).limit(size).offset((page - 1) * size))
    return jsonify(items=[customer_json(u) for u in rows], page=page, per_page=size, total=total)


@route("POST", "/customers/")
@api_auth
@server_only
def api_create_customer():
    data = body()
    email, name = data.get("email"), data.get("name", "")
    if not isinstance(email, str) or not email.strip():
        raise ApiError(422, "invalid", "'email' is required.")
    if not isinstance(name, str) or len(name) > 120:
        raise ApiError(422, "invalid", "'name' must be text of at most 120 characters.")
    try:
        inputs.check_text(email, "email")
        inputs.check_text(name, "name")
        with db.session.begin_nested():  # the same address created at the same moment: one wins
            user, created = users.ensure_customer(db.session, email, now())
            if created:
                user.name = name.strip()
    except ValueError as exc:
        raise ApiError(422, "invalid_email", str(exc)) from None
    except IntegrityError:
        created = False
    if not created:
        raise ApiError(409, "customer_exists", "A customer with this email address exists already.")
    db.session.flush()
    return jsonify(customer_json(user)), 201


@route("GET", "/customers/<int:customer_id>/")
@api_auth
@server_only
def api_customer(customer_id: int):
    return jsonify(customer_json(customer(customer_id)))


@route("GET", "/customers/<int:customer_id>/subscription/")
@api_auth
@server_only
def api_customer_subscription(customer_id: int):
    return subscription_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/")
@api_auth
@server_only
def api_customer_subscribe(customer_id: int):
    return subscribe_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/cancel/")
@api_auth
@server_only
def api_customer_cancel(customer_id: int):
    return cancel_for(customer(customer_id))


@route("GET", "/customers/<int:customer_id>/subscription/preview-change/")
@api_auth
@server_only
def api_customer_preview_change(customer_id: int):
    return preview_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/change-plan/")
@api_auth
@server_only
def api_customer_change_plan(customer_id: int):
    return change_plan_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/resume/")
@api_auth
@server_only
def api_customer_resume(customer_id: int):
    return resume_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/pause/")
@api_auth
@server_only
def api_customer_pause(customer_id: int):
    return pause_for(customer(customer_id))


@route("POST", "/customers/<int:customer_id>/subscription/unpause/")
@api_auth
@server_only
def api_customer_unpause(customer_id: int):
    return unpause_for(customer(customer_id))


@route("GET", "/customers/<int:customer_id>/entitlements/")
@api_auth
@server_only
def api_customer_entitlements(customer_id: int):
    return entitlements_for(customer(customer_id))


@route("GET", "/customers/<int:customer_id>/invoices/")
@api_auth
@server_only
def api_customer_invoices(customer_id: int):
    return invoices_for(customer(customer_id))


@route("GET", "/customers/<int:customer_id>/invoices/<int:invoice_id>/")
@api_auth
@server_only
def api_customer_invoice(customer_id: int, invoice_id: int):
    return invoice_for(customer(customer_id), invoice_id)
