"""Sign up, log in, log out, change or set a password."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from .. import limits
from ..billing.errors import BillingError
from ..billing.subscriptions import find_plan
from ..extensions import db, login_manager
from ..jobs import tasks
from ..models import Plan, User
from ..notify.outbox import queue_account_mail
from ..runtime import now
from ..users import by_email, sign_up
from ..web import here, is_htmx, local_path, safe_next, see_other
from . import sessions, throttle
from .forms import ChangePasswordForm, ConfirmForm, LoginForm, RequestLinkForm, SetPasswordForm, SignupForm

bp = Blueprint("auth", __name__)
LINK_MAX_AGE = 24 * 3600
CONFIRM_MAX_AGE = 3 * 24 * 3600
DEVICE_COOKIE = "known_device"
DEVICE_MAX_AGE = 365 * 24 * 3600


@login_manager.user_loader
def load_user(user_id: str):
    return sessions.load(db.session, user_id, now())


@login_manager.unauthorized_handler
def must_log_in():
    """To the log-in page, and back here after: a whole-page move even when an htmx
    request (a filter click in a tab whose session ended) asked for a fragment."""
    flash(login_manager.login_message, login_manager.login_message_category)
    target = url_for("auth.login", next=local_path(here()))
    return see_other(target) if is_htmx() else redirect(target)


def _chosen_plan(code: str | None) -> Plan | None:
    """The plan picked on the pricing page ("Start with Pro"), carried through sign-up."""
    try:
        return find_plan(db.session, code) if code else None
    except BillingError:
        return None


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Sign up by email confirmation: the answer never tells whether the address has an account.

    A new address gets an account that waits for the emailed link; a known one gets
    a mail saying so, with a link to set a password. Both answer the same 303 and
    flash, after the same work (the password is hashed either way).
    """
    form = SignupForm(plan=request.args.get("plan", ""))
    plan = _chosen_plan(form.plan.data)
    if current_user.is_authenticated:  # the back button, or a second tab: already in
        return see_other(url_for("account.subscribe_view", plan=plan.code) if plan else url_for("account.account"))

    def page(status: int):
        return render_template("auth/signup.html", form=form, plan=plan), status

    if form.validate_on_submit():
        try:
            user, new = sign_up(db.session, form.email.data, form.name.data or "", form.password.data, now())
        except ValueError as exc:
            form.email.errors.append(str(exc))
            return page(422)
        if new:
            _send_confirmation(user, plan)
        else:
            _mail(
                user,
                "You already have an account",
                "Someone, probably you, tried to sign up with this address, which already has an account.\n"
                f"Log in at {current_app.config['PUBLIC_URL']}{url_for('auth.login')}, or use this link within "
                f"24 hours to set a new password:\n{password_link(user)}\n",
            )
        flash(f"Almost done: open the link we emailed to {user.email} to finish signing up.", "info")
        return see_other(url_for("auth.login"))
    return page(422 if form.errors else 200)


def _confirm_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="confirm-signup")


def confirmation_link(user: User, plan: Plan | None = None) -> str:
    """The link that finishes a sign-up; it carries the plan chosen on the pricing page."""
    token = _confirm_signer().dumps({"u": user.id, "f": _fingerprint(user), "p": plan.code if plan else ""})
    return current_app.config["PUBLIC_URL"] + url_for("auth.confirm_signup", token=token)


def _send_confirmation(user: User, plan: Plan | None = None) -> None:
    _mail(
        user,
        "Confirm your email",
        f"Open this link within 3 days to finish signing up:\n{confirmation_link(user, plan)}\n",
    )


def _mail(user: User, subject: str, body: str) -> None:
    """Mail `user` through the outbox, now: committed, then a worker is asked to send it.

    Never from inside the request (a slow or broken mail server would show, in time
    or in errors, which addresses have accounts); at most one such mail per account
    every few minutes, however often a form is posted.
    """
    queue_account_mail(db.session, user.id, subject, body, now())
    db.session.commit()  # in the outbox before the worker is nudged, and kept whatever the answer
    tasks.nudge_delivery(current_app.config["REDIS_URL"])


@bp.route("/signup/confirm/<token>", methods=["GET", "POST"])
def confirm_signup(token: str):
    """The emailed link: a button (a mail scanner's GET logs nobody in), then the chosen plan."""
    try:
        data = _confirm_signer().loads(token, max_age=CONFIRM_MAX_AGE)
        user = db.session.get(User, data["u"])
        if user is None or not user.awaiting_confirmation or data["f"] != _fingerprint(user):
            raise BadSignature("used")
    except BadSignature:
        flash("This link has expired or was already used. Log in, or sign up again.", "error")
        return see_other(url_for("auth.login"))
    form = ConfirmForm()
    if form.validate_on_submit():
        user.awaiting_confirmation = False
        sessions.start(db.session, user, now())
        plan = _chosen_plan(data.get("p"))
        if plan is not None:
            flash("Welcome! Check your plan and confirm to start.", "success")
            return see_other(url_for("account.subscribe_view", plan=plan.code))
        flash("Welcome! Pick a plan to get started.", "success")
        return see_other(url_for("account.pricing"))
    return render_template("auth/confirm.html", form=form, email=user.email)


def _limits() -> tuple[throttle.Limit, throttle.Limit]:
    cfg = current_app.config
    cap = dt.timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"])
    return (throttle.Limit(cfg["LOGIN_MAX_FAILURES"], cap), throttle.Limit(cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"], cap))


def _device_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def _known_device(email: str) -> str | None:
    """This browser's id if the owner of `email` logged in from it before."""
    try:
        known = _device_signer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except BadSignature:
        return None
    if isinstance(known, dict) and known.get("a") == throttle.account_key(email):
        return str(known.get("d"))
    return None


def _account_throttle_key(email: str) -> str:
    """This email's counter, or its own counter on a browser the owner logged in from before."""
    device = _known_device(email)
    return throttle.device_key(email, device) if device else throttle.account_key(email)


def _remember_device(response, email: str):
    device = _known_device(email) or secrets.token_urlsafe(16)
    value = _device_signer().dumps({"a": throttle.account_key(email), "d": device})
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def _too_many(form, until: dt.datetime, moment: dt.datetime, message: str):
    seconds = max(1, math.ceil((until - moment).total_seconds()))
    minutes = math.ceil(seconds / 60)
    form.password.errors.append(f"{message} Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.errorhandler(429)
def _rate_limited(_exc):
    """Log-in attempts over the rate limit (portal/limits.py): the form again, with the reason."""
    form = LoginForm()
    seconds = limits.retry_after()
    minutes = math.ceil(seconds / 60)
    form.password.errors = [f"Too many log-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."]
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


def _dummy_hash() -> str:
    """A real hash to check when there is no account: unknown emails take as long as real ones."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


_DUMMY_HASH: str | None = None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        moment = now()
        account_limit, address_limit = _limits()
        address, account = throttle.address_key(request.remote_addr), _account_throttle_key(email)
        address_until = throttle.reserve(db.session, address, address_limit, moment)
        account_until = None if address_until else throttle.reserve(db.session, account, account_limit, moment)
        if account_until:
            throttle.give_back(db.session, address, address_limit)
        # Counted and committed before any password is checked: concurrent guesses all count,
        # and the count stays though a 429 or 401 answer rolls the request back.
        db.session.commit()
        if address_until:
            return _too_many(form, address_until, moment, "Too many failed log-ins from your network.")
        if account_until:
            return _too_many(
                form,
                account_until,
                moment,
                "Too many failed attempts for this email. "
                "You can also set a new password with “Forgot your password?”.",
            )
        user = by_email(db.session, email)
        matches = check_password_hash((user and user.password_hash) or _dummy_hash(), form.password.data)
        if matches and user is not None and user.password_hash is not None:
            if user.awaiting_confirmation:
                # Same answer as a wrong password (else a sign-up's password tells the address
                # was new); the owner gets the link again.
                _send_confirmation(user)
            else:
                throttle.clear(db.session, account)
                throttle.give_back(db.session, address, address_limit)
                throttle.forget_stale(db.session, moment)
                sessions.start(db.session, user, moment)
                home = url_for("admin.index") if user.is_staff else url_for("account.account")
                return _remember_device(see_other(safe_next(home)), email)
        form.password.errors.append(
            "Email or password is wrong. Signed up recently? Open the link we emailed you first."
        )
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    sessions.end(db.session)
    flash("You are logged out.", "info")
    return see_other(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        # Guesses of the current password (a borrowed session) count like failed log-ins.
        moment, key = now(), throttle.password_key(current_user.id)
        account_limit, _ = _limits()
        until = throttle.reserve(db.session, key, account_limit, moment)
        # Counted and committed before the password is checked: concurrent guesses all count,
        # and the count stays though a 429 or 422 answer rolls the request back.
        db.session.commit()
        if until:
            minutes = max(1, math.ceil((until - moment).total_seconds() / 60))
            form.current.errors.append(
                f"Too many wrong current passwords. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
            )
            return (
                render_template("auth/password.html", form=form),
                429,
                {"Retry-After": str(max(1, math.ceil((until - moment).total_seconds())))},
            )
        if not (current_user.password_hash and check_password_hash(current_user.password_hash, form.current.data)):
            form.current.errors.append("That is not your current password.")
            return render_template("auth/password.html", form=form), 422
        throttle.clear(db.session, key)
        current_user.password_hash = generate_password_hash(form.password.data)
        sessions.end_others(db.session, current_user.id)  # this browser stays in
        flash("Your password was changed.", "success")
        return see_other(url_for("account.account"))
    return render_template("auth/password.html", form=form), 422 if form.errors else 200


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="set-password")


def _fingerprint(user: User) -> str:
    # The link carries a hash of the current password hash: setting a password
    # changes it, so each link works once.
    return hashlib.sha256((user.password_hash or "none").encode()).hexdigest()[:16]


def password_link(user: User) -> str:
    token = _signer().dumps({"u": user.id, "f": _fingerprint(user)})
    return current_app.config["PUBLIC_URL"] + url_for("auth.set_password", token=token)


@bp.route("/set-password", methods=["GET", "POST"])
def request_link():
    form = RequestLinkForm()
    if form.validate_on_submit():
        user = by_email(db.session, form.email.data)
        if user:
            _mail(
                user,
                "Set your password",
                f"Use this link within 24 hours to set your password:\n{password_link(user)}\n",
            )
        else:  # _mail's work (a commit, a nudge), so an unknown address takes as long as a known one
            db.session.commit()
            tasks.nudge_delivery(current_app.config["REDIS_URL"])
        # The same answer whether or not the address is known.
        flash("If that address has an account, a link to set a password is on its way.", "info")
        return see_other(url_for("auth.login"))
    return render_template("auth/request_link.html", form=form), 422 if form.errors else 200


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    try:
        data = _signer().loads(token, max_age=LINK_MAX_AGE)
        user = db.session.get(User, data["u"])
        if user is None or data["f"] != _fingerprint(user):
            raise BadSignature("used")
    except BadSignature:
        flash("This link has expired or was already used. Ask for a new one.", "error")
        return see_other(url_for("auth.request_link"))
    form = SetPasswordForm()
    if form.validate_on_submit():
        user.password_hash = generate_password_hash(form.password.data)
        throttle.clear_account(db.session, user.email)  # the link lifts any log-in delay
        user.awaiting_confirmation = False  # the link proves the mailbox
        sessions.end_all(db.session, user.id)
        sessions.start(db.session, user, now())
        flash("Your password is set.", "success")
        return see_other(url_for("account.account"))
    return render_template("auth/set_password.html", form=form), 422 if form.errors else 200
