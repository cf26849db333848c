"""The customer's pages: pricing, account, invoices, notifications, API tokens."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from .. import inputs, runtime, tokens
from ..billing import coupons, credits, customers
from ..billing.collection import attempts_of, collection_status, default_card
from ..billing.documents import CREDIT_NOTE, INVOICE, RECEIPT, credit_note_document, invoice_document
from ..billing.errors import BillingError
from ..billing.invoice_queries import FILTERS, account_invoices, invoice_page, own_invoice
from ..billing.money import format_money
from ..billing.subscriptions import (
    cancel,
    change_plan,
    find_plan,
    live_subscription,
    pause,
    preview_change,
    quote_subscription,
    resume,
    subscribe,
    trial_available,
    unpause,
)
from ..documents import pdf
from ..extensions import db
from ..forms import ActionForm
from ..models import SUB_TRIALING
from ..runtime import billing_settings, now
from ..web import page_or_partial, see_other, targets
from . import queries
from .forms import BillingDetailsForm, PlanForm, PromotionCodeForm, TokenForm

bp = Blueprint("account", __name__)


@bp.route("/")
def home():
    return redirect(url_for("account.account" if current_user.is_authenticated else "account.pricing"))


@bp.route("/pricing")
def pricing():
    user_id = current_user.id if current_user.is_authenticated else None
    sub = live_subscription(db.session, user_id) if user_id else None
    return render_template(
        "account/pricing.html",
        plans=queries.plans_on_offer(),
        sub=sub,
        form=PlanForm(),
        trial_available=trial_available(db.session, user_id),
    )


@bp.route("/subscribe", methods=["GET", "POST"])
@login_required
def subscribe_view():
    """A summary of the chosen plan (GET), then the subscription itself (POST)."""
    if request.method == "GET" and live_subscription(db.session, current_user.id) is not None:
        code = request.args.get("plan", "")  # already a customer: show what the change would do
        return see_other(url_for("account.change_plan_view", plan=code) if code else url_for("account.account"))
    form = PlanForm(plan=request.args.get("plan", ""))
    try:
        plan = find_plan(db.session, form.plan.data)
    except BillingError as exc:
        flash(exc.message, "error")
        return see_other(url_for("account.pricing"))
    if request.method == "GET":
        return _subscribe_page(form, plan)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors or "plan" in form.errors:
            abort(400)
        return _subscribe_page(form, plan)  # a code too long to be one: said under the field
    code = (form.promotion_code.data or "").strip()
    if request.form.get("apply") is not None:  # "Apply code" without JavaScript: the new price, no subscription
        return _subscribe_page(form, plan)
    try:
        with db.session.begin_nested():  # a refusal undoes the attempt; the redirect below commits
            sub = subscribe(db.session, current_user, plan, now(), billing_settings(), promotion_code=code or None)
    except coupons.CouponError as exc:
        form.promotion_code.errors = [exc.message]
        return _subscribe_page(form, plan)
    except BillingError as exc:
        flash(exc.message, "error")
        return see_other(url_for("account.account" if exc.code == "already_subscribed" else "account.pricing"))
    if sub.status == SUB_TRIALING:
        flash(
            f"You are subscribed to {plan.name}. Your free trial runs until {sub.current_period_end:%b %-d, %Y}.",
            "success",
        )
    else:
        flash(f"You are subscribed to {plan.name}. Your first invoice is ready to pay below.", "success")
    return see_other(url_for("account.account"))


def _discount_for(form, plan):
    """The discount the form's code gives on `plan`, or None; a refused code becomes the field's error."""
    code = (form.promotion_code.data or "").strip()
    if not code or form.promotion_code.errors:
        return None
    try:
        return coupons.preview(db.session, current_user.id, plan, code, now())
    except coupons.CouponError as exc:
        form.promotion_code.errors = [exc.message]
        return None


def _subscribe_page(form, plan, partial: bool = False):
    """The plan's summary with the code's discount (200), or the code's error under its field (422)."""
    quote = quote_subscription(plan, now().date(), trial=trial_available(db.session, current_user.id))
    discount = _discount_for(form, plan)
    template = "account/_subscribe_quote.html" if partial else "account/subscribe.html"
    html = render_template(template, quote=quote, form=form, discount=discount)
    return html, 422 if form.errors else 200


@bp.route("/subscribe/preview", methods=["POST"])
@login_required
def subscribe_preview():
    """htmx: the summary with the new price for the code typed (the Apply button), before confirming."""
    form = PlanForm()
    if not form.validate_on_submit() and ("csrf_token" in form.errors or "plan" in form.errors):
        abort(400)
    try:
        plan = find_plan(db.session, form.plan.data)
    except BillingError:
        abort(404)
    return _subscribe_page(form, plan, partial=True)


@bp.route("/account/promotion-code", methods=["GET", "POST"])
@login_required
def promotion_code_view():
    """Redeem a promotion code on the live subscription: it discounts the next invoices."""
    sub = live_subscription(db.session, current_user.id)
    if sub is None:
        flash("Choose a plan first; you can enter your code when you subscribe.", "error")
        return see_other(url_for("account.pricing"))
    plan = sub.pending_plan or sub.plan
    form = PromotionCodeForm()
    discount = None
    if request.method == "POST":
        if not form.validate_on_submit():
            if "csrf_token" in form.errors:
                abort(400)
        elif request.form.get("apply") is not None:  # see the new price first
            discount = _discount_for(form, plan)
        else:
            try:
                with db.session.begin_nested():  # a refusal undoes the attempt
                    coupons.lock_for_redemption(db.session, sub)
                    redemption = coupons.redeem(db.session, current_user, sub, plan, form.promotion_code.data, now())
            except coupons.CouponError as exc:
                form.promotion_code.errors = [exc.message]
            else:
                flash(f"Code {redemption.promotion_code} applied: {coupons.describe(redemption.coupon)}.", "success")
                return see_other(url_for("account.account"))
    html = render_template(
        "account/promotion_code.html",
        form=form,
        sub=sub,
        plan=plan,
        discount=discount,
        active=coupons.active_redemption(db.session, sub),
    )
    return html, 422 if form.errors else 200


def _subscription_panel():
    """The account page, or (to an htmx action) the panel and what the action may have changed."""
    sub = live_subscription(db.session, current_user.id)
    to_pay, recent = account_invoices(db.session, current_user.id)
    return page_or_partial(
        "account/account.html",
        "account/_account_update.html",
        "subscription",
        dict(
            sub=sub,
            plans=queries.plans_on_offer(),
            form=ActionForm(),
            to_pay=to_pay,
            recent=recent,
            card=default_card(db.session, current_user.id),
            card_canceled=request.args.get("card") == "canceled",
            credit_balances=credits.balances(db.session, current_user.id),
            credit_ledger=credits.ledger(db.session, current_user.id, limit=10),
        ),
    )


@bp.route("/account")
@login_required
def account():
    return _subscription_panel()


def _act(action) -> object:
    """Run a subscription action; answer with the panel (htmx) or a redirect."""
    if not ActionForm().validate_on_submit():
        abort(400)
    sub = live_subscription(db.session, current_user.id)
    try:
        if sub is None:
            raise BillingError("You have no subscription.", "no_subscription")
        with db.session.begin_nested():  # a refusal undoes the action; its answer still commits
            message = action(sub)
    except BillingError as exc:
        flash(exc.message, "error")
    else:
        flash(message, "success")
    if targets("subscription"):
        return _subscription_panel()
    return see_other(url_for("account.account"))


@bp.route("/account/cancel", methods=["POST"])
@login_required
def cancel_view():
    def act(sub):
        cancel(db.session, sub, now())
        return f"Your subscription will end on {sub.current_period_end:%b %-d, %Y}."

    return _act(act)


@bp.route("/account/resume", methods=["POST"])
@login_required
def resume_view():
    def act(sub):
        resume(db.session, sub, now())
        return "Your subscription will continue."

    return _act(act)


@bp.route("/account/pause", methods=["POST"])
@login_required
def pause_view():
    """Pause payments, where staff let customers do so themselves (CUSTOMER_CAN_PAUSE)."""
    if not current_app.config.get("CUSTOMER_CAN_PAUSE"):
        abort(404)

    def act(sub):
        pause(db.session, sub, now())
        return "Payments are paused: no invoices until you resume them."

    return _act(act)


@bp.route("/account/unpause", methods=["POST"])
@login_required
def unpause_view():
    def act(sub):
        unpause(db.session, sub, now())
        return "Payments resume: your next invoice follows the usual schedule."

    return _act(act)


@bp.route("/account/change-plan", methods=["GET", "POST"])
@login_required
def change_plan_view():
    sub = live_subscription(db.session, current_user.id)
    if sub is None:
        return see_other(url_for("account.subscribe_view", plan=request.values.get("plan", "")))
    code = request.values.get("plan", "")
    try:
        plan = find_plan(db.session, code)
        change = preview_change(sub, plan, now().date())
    except BillingError as exc:
        if request.method == "GET" and targets("change-preview"):
            return render_template("account/_change_preview.html", error=exc.message)
        flash(exc.message, "error" if exc.code != "same_plan" else "info")
        return see_other(url_for("account.account"))
    if request.method == "GET":
        return page_or_partial(
            "account/change_plan.html",
            "account/_change_preview.html",
            "change-preview",
            dict(sub=sub, plan=plan, change=change, form=PlanForm(plan=plan.code)),
        )

    def act(sub):
        done, invoice = change_plan(db.session, sub, plan, now(), billing_settings())
        if done.kind == "interval_later":
            return f"You will move to {plan.name} ({plan.interval}ly) on {done.effective:%b %-d, %Y}."
        if done.kind == "interval_now" and invoice is not None:
            return (
                f"You are now on {plan.name}, billed {plan.interval}ly. Invoice {invoice.number} for "
                f"{format_money(invoice.total, invoice.currency)} (the unused part of your last period taken off) "
                "is ready to pay below."
            )
        if done.kind == "downgrade":
            return (
                f"You are now on {plan.name}. The unused time of your previous plan "
                f"({format_money(done.amount, done.currency)} before tax) is in your credit balance."
            )
        if done.kind == "keep":
            return f"You stay on {plan.name}."
        if invoice is None:
            return f"You are now on {plan.name}."
        return (
            f"You are now on {plan.name}. Invoice {invoice.number} for "
            f"{format_money(invoice.total, invoice.currency)} (the rest of this period) is ready to pay below."
        )

    return _act(act)


@bp.route("/account/billing", methods=["GET", "POST"])
@login_required
def billing_details():
    """The name, address, country and tax ID printed on the customer's invoices."""
    form = BillingDetailsForm(obj=None if request.method == "POST" else _details_form_data(current_user))
    form.country.choices = [("", "Choose a country…"), *customers.countries()]
    if request.method == "POST":
        if not form.validate_on_submit():
            if "csrf_token" in form.errors:
                abort(400)
        else:
            errors = customers.update_details(db.session, current_user, _submitted(form))
            if not errors:
                flash("Your billing details are saved; they appear on your next invoices.", "success")
                return see_other(url_for("account.billing_details"))
            for name, message in errors.items():
                form[name].errors = [*form[name].errors, message]
    html = render_template("account/billing.html", form=form)
    return html, 422 if form.errors else 200


def _details_form_data(user):
    """The saved details under the form's field names."""
    details = customers.details_of(user)
    return SimpleNamespace(
        name=details.name,
        company=details.company,
        address=details.address,
        country=details.country or "",
        tax_id=details.tax_id or "",
    )


def _submitted(form: BillingDetailsForm) -> dict:
    return {name: form[name].data or "" for name in ("name", "company", "address", "country", "tax_id")}


@bp.route("/invoices")
@login_required
def invoices():
    status = request.args.get("status")
    status = status if status in FILTERS else None  # an unknown filter shows them all
    try:
        page = inputs.page_number(request.args.get("page"))
    except ValueError as exc:
        raise inputs.BadInput("invalid_page", str(exc)) from None
    pagination = invoice_page(db.session, current_user.id, status, page)
    return page_or_partial(
        "account/invoices.html", "account/_invoice_list.html", "invoices", dict(pagination=pagination, status=status)
    )


@bp.route("/invoices/<int:invoice_id>")
@login_required
def invoice(invoice_id: int):
    inv = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    doc = invoice_document(inv, runtime.seller())
    attempts = attempts_of(db.session, inv.id)
    return render_template(
        "account/invoice.html",
        invoice=inv,
        doc=doc,
        form=ActionForm(),
        payment=request.args.get("payment"),
        collection=collection_status(db.session, inv, now(), attempts),
        attempts=attempts,
    )


@bp.route("/invoices/<int:invoice_id>/pdf")
@login_required
def invoice_pdf(invoice_id: int):
    inv = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    return pdf.download(invoice_document(inv, runtime.seller()), INVOICE)


@bp.route("/invoices/<int:invoice_id>/credit-notes/<int:note_id>/pdf")
@login_required
def credit_note_pdf(invoice_id: int, note_id: int):
    """A credit note of the customer's own invoice, as its PDF."""
    inv = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    note = credits.note_of(db.session, inv.id, note_id) or abort(404)
    return pdf.download(credit_note_document(note, runtime.seller()), CREDIT_NOTE)


@bp.route("/invoices/<int:invoice_id>/receipt/pdf")
@login_required
def receipt_pdf(invoice_id: int):
    """The receipt of a paid invoice (none for an unpaid one)."""
    inv = own_invoice(db.session, current_user.id, invoice_id) or abort(404)
    doc = invoice_document(inv, runtime.seller())
    return pdf.download(doc, RECEIPT) if doc.is_paid else abort(404)


@bp.route("/notifications")
@login_required
def notifications():
    return render_template("account/notifications.html", notes=queries.notifications_of(current_user.id))


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def api_tokens():
    form, secret = TokenForm(), None
    if form.validate_on_submit():
        _, secret = tokens.issue(db.session, current_user, form.name.data, now())
        form = TokenForm(formdata=None)
    html = render_template(
        "account/tokens.html", form=form, secret=secret, revoke=ActionForm(), tokens=queries.tokens_of(current_user.id)
    )
    # The secret is shown once: no copy in the browser's cache or back/forward history.
    return html, 422 if form.errors else 200, {"Cache-Control": "no-store"} if secret else {}


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    if not tokens.revoke(db.session, current_user.id, token_id, now()):
        abort(404)
    flash("The token was revoked.", "success")
    return see_other(url_for("account.api_tokens"))


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico before reading the page's icon link."""
    return current_app.send_static_file("favicon.svg"), {"Cache-Control": "public, max-age=86400"}


@bp.route("/brand/logo")
def seller_logo():
    """The seller's logo (SELLER_LOGO, a file) for the pages' header: public, cacheable."""
    path = pdf.logo_path(runtime.seller()) or abort(404)
    return send_file(path, max_age=3600)
