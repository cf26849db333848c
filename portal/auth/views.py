"""Sign up, log in, log out, change or set a password."""
from __future__ import annotations

import datetime as dt
import hashlib
import math

from flask import Blueprint, current_app, flash, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..billing.errors import BillingError
from ..billing.subscriptions import find_plan
from ..extensions import db, login_manager
from ..imports import normalize_email
from ..models import Plan, User
from ..notify import sender_from_config
from ..web import now, see_other
from .forms import ChangePasswordForm, LoginForm, RequestLinkForm, SetPasswordForm, SignupForm

bp = Blueprint("auth", __name__)
LINK_MAX_AGE = 24 * 3600


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(User, int(user_id))


def safe_next(default: str) -> str:
    """Only same-site paths: never redirect to another host after login."""
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


def _by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def _chosen_plan(code: str | None) -> Plan | None:
    """The plan picked on the pricing page ("Start with Pro"), carried through sign-up."""
    try:
        return find_plan(db.session, code) if code else None
    except BillingError:
        return None


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignupForm(plan=request.args.get("plan", ""))
    plan = _chosen_plan(form.plan.data)

    def page(status: int):
        return render_template("auth/signup.html", form=form, plan=plan), status

    if form.validate_on_submit():
        try:
            email = normalize_email(form.email.data)
        except ValueError as exc:
            form.email.errors.append(str(exc))
            return page(422)
        if _by_email(email):
            form.email.errors.append("An account with this email already exists. Log in instead.")
            return page(409)
        user = User(email=email, name=(form.name.data or "").strip(),
                    password_hash=generate_password_hash(form.password.data), created_at=now())
        db.session.add(user)
        db.session.commit()
        login_user(user)
        if plan is not None:
            flash("Welcome! Check your plan and confirm to start.", "success")
            return see_other(url_for("account.subscribe_view", plan=plan.code))
        flash("Welcome! Pick a plan to get started.", "success")
        return see_other(url_for("account.pricing"))
    return page(422 if form.errors else 200)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = _by_email(form.email.data)
        moment = now()
        if user and user.locked_until and user.locked_until > moment:
            minutes = max(1, math.ceil((user.locked_until - moment).total_seconds() / 60))
            form.password.errors.append(
                f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
            return render_template("auth/login.html", form=form), 429
        if user and user.password_hash and check_password_hash(user.password_hash, form.password.data):
            user.failed_logins, user.locked_until = 0, None
            db.session.commit()
            login_user(user)
            return see_other(safe_next(url_for("admin.index") if user.is_staff else url_for("account.account")))
        if user:
            user.failed_logins += 1
            if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
                user.locked_until = moment + dt.timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
                user.failed_logins = 0
            db.session.commit()
        form.password.errors.append("Email or password is wrong.")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return see_other(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not (current_user.password_hash and check_password_hash(current_user.password_hash, form.current.data)):
            form.current.errors.append("That is not your current password.")
            return render_template("auth/password.html", form=form), 422
        current_user.password_hash = generate_password_hash(form.password.data)
        db.session.commit()
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
        user = _by_email(form.email.data)
        if user:
            sender_from_config(current_app.config).send(
                user.email, "Set your password",
                f"Use this link within 24 hours to set your password:\n{password_link(user)}\n")
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
        user.failed_logins, user.locked_until = 0, None
        db.session.commit()
        login_user(user)
        flash("Your password is set.", "success")
        return see_other(url_for("account.account"))
    return render_template("auth/set_password.html", form=form), 422 if form.errors else 200
