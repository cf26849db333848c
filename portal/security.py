"""Security headers on every response, and Secure cookies when the portal is served over https.

A small after_request rather than a library: flask-talisman (last release 2023)
would also force its own cookie and HTTPS settings on the app, and all that is
needed is a per-request nonce and a fixed set of headers.

The CSP allows scripts from this site and, for inline ones, a per-request nonce
(Flask-Admin stamps it on its <script> tags). Flask-Admin also puts a few fixed
inline handlers on its buttons (onclick="return modelActions.execute('void');")
and javascript:void(0) links: on /admin those exact strings are allowed by
hash ('unsafe-hashes'), nothing else. Styles may be inline (style attributes on the dashboard chart, htmx's
indicator style); they cannot run code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence

from flask import Flask, request

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin keeps tokens in URLs (set-password links) from leaking to other sites,
    # and still sends the Referer that Flask-WTF checks on https.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csp_nonce() -> str:
    """This request's nonce (kept on the request, not on g, which may outlive it)."""
    return request.environ.setdefault("portal.csp_nonce", secrets.token_urlsafe(16))


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def admin_handler_hashes(admin) -> list[str]:
    """Hashes of the inline event handlers Flask-Admin's bootstrap4 templates write."""
    handlers = {
        "return false;",
        "javascript:void(0)",
        "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    }
    for view in getattr(admin, "_views", []):
        for name, _text in getattr(view, "_actions", []):
            handlers.add(f"return modelActions.execute('{name}');")
    return sorted(_hash(h) for h in handlers)


def policy(nonce: str, handler_hashes: Sequence[str] = ()) -> str:
    scripts = ["'self'", f"'nonce-{nonce}'"]
    if handler_hashes:
        scripts += ["'unsafe-hashes'", *handler_hashes]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src " + " ".join(scripts),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


def init_security(app: Flask, admin=None) -> None:
    https = app.config["PUBLIC_URL"].startswith("https://")
    if https:  # cookies never travel in clear text when the portal is https
        app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = True
    admin_hashes = admin_handler_hashes(admin) if admin is not None else []
    admin_prefix = (admin.url if admin is not None else "/admin").rstrip("/") + "/"
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        on_admin = (request.path + "/").startswith(admin_prefix)
        response.headers.setdefault("Content-Security-Policy", policy(csp_nonce(), admin_hashes if on_admin else []))
        if https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
