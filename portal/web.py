"""Small helpers every blueprint shares: the clock, HTMX-aware responses."""
from __future__ import annotations

import datetime as dt

from flask import current_app, make_response, redirect, render_template, request

from .billing.settings import BillingSettings
from .models import utcnow


def now() -> dt.datetime:
    """The current UTC time; tests may set CLOCK to bill 'as of' another day."""
    return current_app.config.get("CLOCK", utcnow)()


def billing_settings() -> BillingSettings:
    return BillingSettings.from_config(current_app.config)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def page_or_partial(page: str, partial: str, status: int = 200, **context):
    """The whole page, or only the partial an HTMX request targets (Vary: HX-Request)."""
    response = make_response(render_template(partial if is_htmx() else page, **context), status)
    response.vary.add("HX-Request")
    return response


def see_other(location: str):
    """After a POST: 303 to the next page, or HX-Redirect for an HTMX request."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, 303)
