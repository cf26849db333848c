"""Settings read from the environment, with safe defaults for a laptop."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .billing.seller import DEFAULT_NAME

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, got {raw!r}") from None


def _ints(name: str, default: str) -> tuple[int, ...]:
    raw = os.environ.get(name, default)
    try:
        return tuple(sorted(int(x) for x in raw.split(",") if x.strip()))
    except ValueError:
        raise RuntimeError(f"{name} must be comma-separated whole numbers, got {raw!r}") from None


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'billing.db'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def from_env() -> dict:
    """The app's configuration as a dict, read once when the app is created."""
    # Follows PORT unless set: links in mails and payment returns must reach this app.
    public_url = (os.environ.get("PUBLIC_URL") or f"http://127.0.0.1:{_int('PORT', 5000)}").rstrip("/")
    https = public_url.startswith("https://")
    return {
        "SECRET_KEY": _secret_key(),
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "PORT": _int("PORT", 5000),
        "PUBLIC_URL": public_url,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", https),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", https),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024),
        "WTF_CSRF_TIME_LIMIT": None,
        # Billing rules
        "BILLING_DUE_DAYS": _int("BILLING_DUE_DAYS", 14),
        "BILLING_REMINDER_DAYS": _ints("BILLING_REMINDER_DAYS", "-3,0,3,7"),
        "BILLING_PAST_DUE_AFTER_DAYS": _int("BILLING_PAST_DUE_AFTER_DAYS", 7),
        "BILLING_CHUNK_SIZE": _int("BILLING_CHUNK_SIZE", 10_000),
        "BILLING_RETRY_DAYS": _ints("BILLING_RETRY_DAYS", "1,3,5,7"),
        "BILLING_CANCEL_AFTER_DAYS": _int("BILLING_CANCEL_AFTER_DAYS", 0),
        "PRICE_CHANGE_NOTICE_DAYS": _int("PRICE_CHANGE_NOTICE_DAYS", 30),
        "CUSTOMER_CAN_PAUSE": _flag("CUSTOMER_CAN_PAUSE"),
        "CHARGE_CHUNK_SIZE": _int("CHARGE_CHUNK_SIZE", 500),
        # Taxes and invoice numbers (the seller's other details are configured beside these).
        "SELLER_COUNTRY": os.environ.get("SELLER_COUNTRY", "").strip().upper(),
        "INVOICE_PREFIX": os.environ.get("INVOICE_PREFIX", "INV").strip() or "INV",
        "INVOICE_NUMBER_PER_YEAR": _flag("INVOICE_NUMBER_PER_YEAR"),
        "CREDIT_NOTE_PREFIX": os.environ.get("CREDIT_NOTE_PREFIX", "CN").strip() or "CN",
        # Mail: console unless MAIL_SERVER is set
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "billing@localhost"),
        # Payments: the demo provider unless STRIPE_SECRET_KEY is set
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        # Workers: embedded (in-process, fakeredis) unless REDIS_URL is set
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # Outbound webhooks: seconds to wait for a receiver; whether endpoints may be on
        # loopback or private networks (off in production: the app must not probe its neighbours)
        "WEBHOOKS_TIMEOUT": _int("WEBHOOKS_TIMEOUT", 5),
        "WEBHOOKS_ALLOW_PRIVATE_URLS": _flag("WEBHOOKS_ALLOW_PRIVATE_URLS"),
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_MINUTES": _int("LOGIN_LOCK_MINUTES", 15),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": _int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20),
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # The seller: who issues the invoices (portal.billing.seller.Seller reads these)
        "SELLER_NAME": os.environ.get("SELLER_NAME") or DEFAULT_NAME,
        "SELLER_LEGAL_NAME": os.environ.get("SELLER_LEGAL_NAME", ""),
        "SELLER_ADDRESS": os.environ.get("SELLER_ADDRESS", ""),
        "SELLER_TAX_ID": os.environ.get("SELLER_TAX_ID", ""),
        "SELLER_EMAIL": os.environ.get("SELLER_EMAIL", ""),
        "SELLER_LOGO": os.environ.get("SELLER_LOGO", ""),
        # Rate limits (Flask-Limiter notation: "300/minute", "10/minute;100/hour"); counted in
        # Redis when REDIS_URL or RATELIMIT_STORAGE_URI is set, else in each process's memory.
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT") or "300/minute",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_RATE_LIMIT_PER_ACCOUNT") or "10/minute;50/hour",
        "LOGIN_RATE_LIMIT_PER_ADDRESS": os.environ.get("LOGIN_RATE_LIMIT_PER_ADDRESS") or "60/minute",
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", ""),
    }
