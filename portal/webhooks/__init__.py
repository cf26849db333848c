"""Outbound webhooks, the service: where an endpoint may point (urls), and sending signed
deliveries over HTTP (sender). The rules (order, retries, disabling) are the core's:
portal/billing/webhooks.py and portal/billing/events.py."""
