"""Rate limits (Flask-Limiter): the JSON API per key or token, log-in per account and per address.

Counters live in Redis when REDIS_URL (or RATELIMIT_STORAGE_URI) is configured, so every
web process shares them, else in the process's memory. Each app gets a Limiter of its own
(apps built twice, in tests, never share counters). A breach raises a 429 that the API
answers as JSON and the log-in page as its form with a message, both with Retry-After.
If the store is unreachable, requests go through (limits are a guard, not a gate).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import current_user

from .auth.throttle import account_key, address_key

EXTENSION = "portal.limiter"


def storage_uri(config) -> str:
    return config.get("RATELIMIT_STORAGE_URI") or config.get("REDIS_URL") or "memory://"


def client_address() -> str:
    return address_key(request.remote_addr)


def api_caller() -> str:
    """The key or token presented (its digest: counters never hold a secret), else the session's user."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return "api:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    if current_user.is_authenticated:
        return f"api:user:{current_user.id}"
    return "api:" + client_address()


def login_account() -> str:
    return "login:" + account_key(request.form.get("email", ""))


def login_address() -> str:
    return "login:" + client_address()


def retry_after() -> int:
    """Seconds until the limit just breached lets a request through again."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 60
    return max(1, math.ceil(current.window[0] - time.time()))  # window[0]: when the window resets


def init_limits(app: Flask, api_blueprint, login_endpoint: str) -> Limiter:
    limiter = Limiter(
        key_func=client_address,
        storage_uri=storage_uri(app.config),
        strategy="fixed-window",
        swallow_errors=True,
        key_prefix="ratelimit",
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    # One allowance per caller for the whole API, not one per endpoint.
    limiter.shared_limit(lambda: app.config["API_RATE_LIMIT"], scope="api", key_func=api_caller)(api_blueprint)
    login: Any = app.view_functions[login_endpoint]
    login = limiter.limit(lambda: app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"], key_func=login_account, methods=["POST"])(
        login
    )
    login = limiter.limit(lambda: app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"], key_func=login_address, methods=["POST"])(
        login
    )
    app.view_functions[login_endpoint] = login  # this app's view, limited; the blueprint's stays as it is
    return limiter
