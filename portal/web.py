"""Small helpers every blueprint shares: HTMX-aware responses and safe redirects."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import make_response, redirect, render_template, request
from werkzeug.urls import iri_to_uri

HTMX_HEADERS = ("HX-Request", "HX-Boosted", "HX-Target")


def is_htmx() -> bool:
    """Any request made by htmx, boosted links and forms included."""
    return request.headers.get("HX-Request") == "true"


def targets(element_id: str) -> bool:
    """An htmx request that wants only the element `element_id` back.

    A boosted link or form sends HX-Request too, but wants the whole page: it is
    told apart by HX-Boosted, and by targeting `body` rather than the element.
    """
    headers = request.headers
    return is_htmx() and headers.get("HX-Boosted") != "true" and headers.get("HX-Target") == element_id


def page_or_partial(page: str, partial: str, target: str, context: dict, http_status: int = 200):
    """The whole page, or only `partial` when the request targets the element `target`.

    The template context is a dict of its own so that no template variable (an
    invoice filter called `status`, say) can ever become the HTTP status.
    """
    return make_response(render_template(partial if targets(target) else page, **context), http_status)


def vary_on_htmx(response):
    """Every answer may differ by these headers (a fragment or the page, HX-Redirect or 303)."""
    response.vary.update(HTMX_HEADERS)
    return response


def whole_page(response):
    """A whole page (an error page) answering an htmx request that targeted a fragment:
    swap it for the body rather than nest a second top bar inside the fragment."""
    if is_htmx():
        response.headers["HX-Retarget"] = "body"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def here() -> str:
    """The page the person is on: for an htmx request, the page that made it."""
    if is_htmx() and request.headers.get("HX-Current-URL"):
        parts = urlsplit(request.headers["HX-Current-URL"])
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.full_path.rstrip("?")


# Browsers drop tabs and newlines anywhere in a URL, read a backslash as a slash
# and treat "//host" as another site: a local path has none of these.
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


def local_path(target: str | None) -> str | None:
    """`target` if a browser would stay on this site following it, else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if _UNSAFE_IN_PATH.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def safe_next(default: str) -> str:
    """The `next` query parameter if it is a path on this site, else `default`."""
    return local_path(request.args.get("next")) or default


def see_other(location: str, external: bool = False):
    """After a POST: 303 to the next page, or HX-Redirect for an HTMX request.

    Only local paths, unless the caller vouches for an `external` address it
    built itself (a checkout page): never a redirect taken from the request.
    """
    if not external and local_path(location) is None:
        raise ValueError(f"refusing to redirect off-site to {location!r}")
    if is_htmx():
        response = make_response("", 204)
        # A header holds ASCII only: percent-encode as the Location header is.
        response.headers["HX-Redirect"] = iri_to_uri(location)
        return response
    return redirect(location, 303)
