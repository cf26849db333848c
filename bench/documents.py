"""Benchmark: what PDF invoices cost, against the HTML they are made from.

    python -m bench.documents [--n 40]

Issues N invoices in a temporary SQLite app (each with its "invoice issued" notice),
then times, in one process and one run:
  html    the invoice document's HTML (Jinja only): the baseline
  pdf     the same document as a PDF (Jinja + WeasyPrint layout + PDF)
  mail    delivering the N "invoice issued" mails (text, HTML, PDF attached) to a
          sender that discards them, against the same mails without the PDF
and prints medians per invoice and the ratios, so the outbox's extra work per mail
(and how many invoices one worker can mail per minute) is known.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

from flask_migrate import upgrade
from sqlalchemy import select, update

from portal.app import create_app
from portal.billing.catalog import seed_plans
from portal.billing.documents import invoice_document
from portal.billing.settings import BillingSettings
from portal.billing.subscriptions import find_plan, subscribe
from portal.documents import pdf
from portal.extensions import db
from portal.models import Invoice, Notification, User, utcnow
from portal.notify import outbox
from portal.notify.outbox import deliver_pending
from portal.runtime import seller

SELLER = {
    "SELLER_NAME": "Nimbus Notes",
    "SELLER_LEGAL_NAME": "Nimbus Software Oy",
    "SELLER_ADDRESS": "Mannerheimintie 12 B\n00100 Helsinki",
    "SELLER_COUNTRY": "FI",
    "SELLER_TAX_ID": "FI12345678",
    "SELLER_EMAIL": "billing@nimbus.example",
}


class Discard:
    """A mail sender that keeps nothing: only the rendering is timed."""

    def send(self, to, subject, body, html=None, attachments=()) -> None:
        pass

    def batch(self):
        return contextlib.nullcontext(self)


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    if not pdf.available():
        raise SystemExit(f"PDF rendering is not available: {pdf.INSTALL_HINT}")

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.db", "TESTING": True, **SELLER})
        with app.app_context(), app.test_request_context():
            upgrade()
            seed_plans(db.session)
            now, plan = utcnow(), find_plan(db.session, "pro")
            for i in range(args.n):
                user = User(email=f"customer{i}@example.com", name=f"Customer {i}", created_at=now)
                db.session.add(user)
                db.session.flush()
                subscribe(db.session, user, plan, now, BillingSettings())
            db.session.commit()

            pdf.render_pdf(invoice_document(db.session.scalars(select(Invoice)).first(), seller()))  # warm up
            html_times, pdf_times = [], []
            for invoice in db.session.scalars(select(Invoice).order_by(Invoice.id)):
                doc = invoice_document(invoice, seller())
                t0 = time.perf_counter()
                pdf.render_html(doc)
                html_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pdf.render_pdf(doc)
                pdf_times.append(time.perf_counter() - t0)

            def deliver() -> float:
                db.session.execute(update(Notification).values(sent_at=None, subject=None, body=None))
                db.session.commit()
                db.session.expire_all()
                t0 = time.perf_counter()
                sent = deliver_pending(db.session, Discard(), utcnow(), limit=args.n)
                seconds = time.perf_counter() - t0
                db.session.commit()
                assert sent == args.n, sent
                return seconds

            with_pdf = deliver()
            attach, outbox.attachments = outbox.attachments, lambda note: []
            try:
                without_pdf = deliver()
            finally:
                outbox.attachments = attach

    html_ms, pdf_ms = median_ms(html_times), median_ms(pdf_times)
    print(f"documents benchmark: N={args.n} invoices (medians per invoice)")
    print(f"  invoice HTML (Jinja)            {html_ms:8.2f} ms  (the baseline: x1.00)")
    print(f"  invoice PDF (Jinja + WeasyPrint) {pdf_ms:7.2f} ms  x{pdf_ms / html_ms:.1f}")
    per_with, per_without = with_pdf / args.n * 1000, without_pdf / args.n * 1000
    print(f"  'invoice issued' mail, no PDF   {per_without:8.2f} ms")
    print(f"  'invoice issued' mail with PDF  {per_with:8.2f} ms  x{per_with / per_without:.1f} of the mail without")
    print(f"  mails with PDF per worker-minute: {60_000 / per_with:,.0f}")


if __name__ == "__main__":
    main()
