"""Taking payment for invoices: Stripe Checkout, or the offline demo provider.

The only package that imports stripe (in gateway.py).
"""
