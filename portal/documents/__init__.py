"""Invoices and receipts as PDF files, rendered in-process (WeasyPrint) from the same
Document (portal.billing.documents) as the invoice page and the mails."""
