"""create_app(): builds one app instance (the web app, a worker, a command)."""

from __future__ import annotations

import logging
from functools import lru_cache

from babel import Locale
from flask import Flask, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import inputs, runtime, transactions
from .account.views import bp as account
from .admin import init_admin
from .api.views import bp as api
from .auth.views import bp as auth
from .billing import catalog, credits, customers, documents, invoices, pricing, statuses, taxes
from .billing.money import format_money
from .commands import init_cli
from .extensions import csrf, db, login_manager, migrate
from .inputs import BadInput
from .jobs import tasks
from .limits import init_limits
from .payments.views import bp as payments
from .security import init_security
from .web import targets, vary_on_htmx, whole_page


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(config_module.ROOT / "templates"),
        static_folder=str(config_module.ROOT / "static"),
        instance_path=str(config_module.INSTANCE),
    )
    app.config.update(config_module.from_env())
    app.config.update(config or {})
    register_logging(app)
    register_proxies(app)
    register_extensions(app)
    register_transactions(app)
    register_inputs(app)
    register_blueprints(app)
    register_limits(app)
    register_admin(app)
    register_templates(app)
    register_htmx(app)
    register_errors(app)
    register_cli(app)
    return app


def register_logging(app: Flask) -> None:
    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, take the client address and scheme from them
    (log-in limits are per client address)."""
    hops = app.config.get("TRUSTED_PROXIES", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(config_module.ROOT / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.login_message_category = "info"
    csrf.init_app(app)


def register_transactions(app: Flask) -> None:
    """One unit of work per request: see portal/transactions.py."""
    transactions.init_app(app)
    tasks.watch_events()  # a commit that recorded outbound events asks a worker to send them


def register_inputs(app: Flask) -> None:
    """Bounded ids in every route, chunked bodies held to MAX_CONTENT_LENGTH, NUL bytes refused."""
    app.request_class = inputs.BoundedRequest
    app.url_map.converters["int"] = inputs.Int64Converter  # before any route is added
    app.before_request(inputs.guard_request)


def register_blueprints(app: Flask) -> None:
    for blueprint in (auth, account, payments, api):
        app.register_blueprint(blueprint)


def register_limits(app: Flask) -> None:
    """Rate limits on the API (per key or token) and on log-in (per account and per address)."""
    init_limits(app, api, "auth.login")


def register_admin(app: Flask) -> None:
    init_security(app, init_admin(app))


def register_templates(app: Flask) -> None:
    # Dates repeat on every list page (periods, due days): format each one once.
    day = lru_cache(maxsize=4096)(lambda d: d.strftime("%b %-d, %Y"))
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["day"] = lambda d: day(d) if d else ""
    app.jinja_env.filters["moment"] = lambda t: t.strftime("%b %-d, %Y %H:%M UTC") if t else ""
    # Status labels, written once (portal/billing/statuses.py): {{ invoice.status|invoice_status }}.
    app.jinja_env.filters["invoice_status"] = statuses.INVOICE_LABELS.__getitem__
    app.jinja_env.filters["subscription_status"] = statuses.SUBSCRIPTION_LABELS.__getitem__
    app.jinja_env.filters["payment_status"] = statuses.PAYMENT_LABELS.__getitem__
    # A subscription's own price and an announced change of it (portal/billing/pricing.py).
    app.jinja_env.filters["paid_price"] = pricing.paid_price
    app.jinja_env.filters["price_change_date"] = pricing.price_change_date
    app.jinja_env.filters["next_price"] = pricing.next_period_price
    app.jinja_env.globals["plan_variants"] = catalog.variants
    app.jinja_env.filters["yearly_saving"] = lambda pair: catalog.yearly_saving(*pair) if all(pair) else 0
    app.jinja_env.globals["invoice_statuses"] = statuses.INVOICE_LABELS  # the invoice list's filter chips
    app.jinja_env.filters["tax_summary"] = taxes.tax_summary  # an invoice's tax per rate
    app.jinja_env.filters["percent"] = taxes.format_percent
    app.jinja_env.filters["country_name"] = customers.country_name
    app.jinja_env.tests["payable"] = invoices.is_payable  # {% if invoice is payable %}: the core's answer
    app.jinja_env.globals["targets"] = targets
    # The seller's name, address and logo on every page and mail (SELLER_* settings).
    app.context_processor(lambda: {"seller": runtime.seller()})
    app.jinja_env.filters["country"] = country_name
    app.jinja_env.globals["payment_methods"] = documents.PAYMENT_METHODS
    # Corrections (billing/credits.py): where a credit note's money went, what a payment can still give back.
    app.jinja_env.filters["credit_outcome"] = lambda outcome: credits.OUTCOME_LABELS.get(outcome, outcome)
    app.jinja_env.filters["refundable"] = lambda payment: credits.refundable(db.session, payment)
    # Checked once at start (`make run` installs it first), not on every render.
    app.jinja_env.globals["htmx_available"] = (config_module.ROOT / "static/vendor/htmx.min.js").exists()


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """'FI' -> 'Finland' (English names from Babel's CLDR data); an unknown code as given."""
    return Locale("en").territories.get(code.upper(), code) if code else ""


def register_htmx(app: Flask) -> None:
    app.after_request(vary_on_htmx)


def register_errors(app: Flask) -> None:
    def page(status: int, title: str, message: str, code: str | None = None):
        if request.path.startswith("/api/"):
            return {"error": {"code": code or title.lower().replace(" ", "_"), "message": message}}, status
        return whole_page(
            make_response(render_template("error.html", status=status, title=title, message=message), status)
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Any other 4xx/5xx: the API's JSON error shape under /api/ (405s included)."""
        if not request.path.startswith("/api/"):
            if isinstance(exc, BadInput):
                return page(400, "Bad request", exc.description)
            return exc
        body, status = page(exc.code or 500, exc.name, exc.description or exc.name, getattr(exc, "error_code", None))
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return body, status, headers

    @app.errorhandler(404)
    def not_found(_exc):
        return page(404, "Not found", "There is nothing at this address, or it is not yours to see.")

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        return page(
            400,
            "Form expired",
            "The form was missing its security token or it expired. Go back, reload the page and try again.",
        )

    @app.errorhandler(413)
    def too_large(_exc):
        return page(413, "Too large", "The request was larger than this app accepts.")

    @app.errorhandler(500)
    def server_error(_exc):
        db.session.rollback()
        return page(500, "Something went wrong", "The error was logged; nothing was half-saved.")


def register_cli(app: Flask) -> None:
    init_cli(app)
