"""Render an invoice or a receipt as a PDF: templates/documents/invoice.html through
WeasyPrint, inside this process (no rendering service to run).

WeasyPrint needs the system's Pango library. It is loaded on first use, not at import,
so the app (and every page but the PDFs) runs on a machine without it; there a PDF
request gets `PdfUnavailable` with the package to install.
"""

from __future__ import annotations

import base64
import functools
import importlib
import logging
import mimetypes
import threading
from pathlib import Path
from types import ModuleType

from flask import Response, abort, current_app, render_template

from ..billing.documents import INVOICE, Document
from ..billing.seller import Seller
from ..config import ROOT

log = logging.getLogger(__name__)

PDF_MIMETYPE = "application/pdf"
INSTALL_HINT = "install Pango (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"


class PdfUnavailable(RuntimeError):
    """PDF rendering cannot run on this machine (a system library is missing)."""


@functools.cache
def _weasyprint() -> ModuleType:
    try:
        return importlib.import_module("weasyprint")
    except OSError as exc:  # the Pango library is not installed
        raise PdfUnavailable(f"PDF documents need the Pango library: {INSTALL_HINT} ({exc})") from exc


def available() -> bool:
    try:
        _weasyprint()
    except PdfUnavailable:
        return False
    return True


def logo_path(seller: Seller) -> Path | None:
    """SELLER_LOGO as a readable file (relative to the project's folder), else None."""
    if not seller.logo or seller.logo_is_url:
        return None
    path = Path(seller.logo) if Path(seller.logo).is_absolute() else ROOT / seller.logo
    return path if path.is_file() else None


def _logo_src(seller: Seller) -> str | None:
    """The seller's logo for the PDF: a file embedded as a data: URI, or its URL."""
    if seller.logo_is_url:
        return seller.logo
    path = logo_path(seller)
    if path is None:
        return None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render_html(doc: Document, kind: str = INVOICE) -> str:
    invoice_url = f"{current_app.config['PUBLIC_URL']}/invoices/{doc.invoice_id}"
    return render_template(
        "documents/invoice.html", doc=doc, kind=kind, logo_src=_logo_src(doc.seller), invoice_url=invoice_url
    )


_local = threading.local()


def _font_config(weasyprint: ModuleType):
    """One font configuration per thread, reused: building it anew is a third of a render
    (Pango's font maps are not shared between threads)."""
    if getattr(_local, "fonts", None) is None:
        _local.fonts = weasyprint.text.fonts.FontConfiguration()
    return _local.fonts


def render_pdf(doc: Document, kind: str = INVOICE) -> bytes:
    """The document as PDF bytes. Only the logo is ever fetched (http(s) or data:, 5 s at most)."""
    weasyprint = _weasyprint()
    fetcher = weasyprint.urls.URLFetcher(timeout=5, allowed_protocols=("http", "https", "data"))
    html = weasyprint.HTML(string=render_html(doc, kind), url_fetcher=fetcher)
    return html.write_pdf(font_config=_font_config(weasyprint))


def download(doc: Document, kind: str = INVOICE) -> Response:
    """The PDF as a download named after the invoice number; private, never cached."""
    try:
        data = render_pdf(doc, kind)
    except PdfUnavailable as exc:
        log.error("%s", exc)
        abort(503, description=f"PDF documents are not available on this server: {INSTALL_HINT}.")
    response = Response(data, mimetype=PDF_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{doc.filename(kind)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
