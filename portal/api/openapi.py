"""The OpenAPI 3.1 document of the JSON API; tests validate real responses against it."""

from __future__ import annotations

from ..models import INV_STATUSES, SUB_STATUSES

DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Subscription": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "plan",
            "status",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "ended_at",
            "pending_plan",
            "customer_id",
            "paused_at",
            "collection_method",
            "payment_method",
            "price",
            "currency",
            "interval",
            "next_price",
            "price_change",
        ],
        "properties": {
            "id": {"type": "integer"},
            "plan": {"type": "string"},
            "status": {"enum": list(SUB_STATUSES)},
            "current_period_start": DATE,
            "current_period_end": DATE,
            "cancel_at_period_end": {"type": "boolean"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
            "pending_plan": {"type": ["string", "null"]},
            "customer_id": {"type": "integer"},
            "paused_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Collection paused since then: no invoices until unpaused",
            },
            "collection_method": {
                "enum": ["charge_automatically", "send_invoice"],
                "description": "charge_automatically: each invoice is charged to the saved card when issued",
            },
            "payment_method": {
                "oneOf": [{"$ref": "#/components/schemas/PaymentMethod"}, {"type": "null"}],
                "description": "The saved card invoices are charged to, or null",
            },
            "price": {"type": "integer", "description": "What this subscription pays per period, minor units"},
            "currency": {"type": "string"},
            "interval": {"enum": ["month", "year"]},
            "next_price": {"type": "integer", "description": "The next invoice's price, minor units, before tax"},
            "price_change": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["price", "on"],
                        "properties": {"price": {"type": "integer"}, "on": DATE},
                    },
                    {"type": "null"},
                ],
                "description": "An announced new price and the first day it is paid, or null",
            },
        },
    },
    "PaymentMethod": {
        "type": "object",
        "additionalProperties": False,
        "required": ["brand", "last4", "exp_month", "exp_year"],
        "properties": {
            "brand": {"type": "string", "examples": ["visa"]},
            "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
            "exp_month": {"type": "integer", "minimum": 1, "maximum": 12},
            "exp_year": {"type": "integer"},
        },
    },
    "PaymentAttempt": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "attempt",
            "created_at",
            "finished_at",
            "status",
            "amount",
            "failure_code",
            "failure_reason",
            "next_attempt_at",
        ],
        "properties": {
            "attempt": {"type": "integer", "minimum": 1},
            "created_at": DATETIME,
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "status": {"enum": ["pending", "succeeded", "failed", "requires_action"]},
            "amount": {"type": "integer", "description": "minor units"},
            "failure_code": {"type": ["string", "null"], "examples": ["card_declined", "insufficient_funds"]},
            "failure_reason": {"type": ["string", "null"], "description": "why it failed, in plain words"},
            "next_attempt_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "when the charge is tried again; null after the last retry",
            },
        },
    },
    "Invoice": {
        "type": "object",
        "required": [
            "id",
            "number",
            "status",
            "kind",
            "description",
            "period_start",
            "period_end",
            "total",
            "currency",
            "total_display",
            "issued_at",
            "due_date",
            "paid_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "number": {
                "type": "string",
                "description": "The gapless invoice number (INVOICE_PREFIX, e.g. INV-000042 or INV-2026-000042)",
            },
            "status": {"enum": list(INV_STATUSES)},
            "kind": {"enum": ["period", "proration"]},
            "description": {"type": "string"},
            "period_start": DATE,
            "period_end": DATE,
            "total": {"type": "integer", "minimum": 0, "description": "minor units, tax included: what is charged"},
            "subtotal": {"type": "integer", "minimum": 0, "description": "minor units: the lines' net amounts"},
            "tax": {"type": "integer", "minimum": 0, "description": "minor units: the sum of the lines' tax"},
            "tax_note": {"type": ["string", "null"], "description": "e.g. the EU reverse-charge note"},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "total_display": {"type": "string"},
            "issued_at": DATETIME,
            "due_date": DATE,
            "paid_at": {"type": ["string", "null"], "format": "date-time"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["description", "quantity", "unit_amount", "amount", "tax", "tax_rate_percent"],
                    "properties": {
                        "description": {"type": "string"},
                        "quantity": {"type": "integer"},
                        "unit_amount": {"type": "integer", "description": "minor units, net"},
                        "amount": {"type": "integer", "description": "minor units, net"},
                        "period_start": {"type": ["string", "null"], "format": "date"},
                        "period_end": {"type": ["string", "null"], "format": "date"},
                        "tax": {"type": "integer", "description": "minor units, rounded half up per line"},
                        "tax_rate_percent": {"type": "string", "examples": ["25.5"]},
                        "tax_name": {"type": "string"},
                        "kind": {
                            "enum": ["item", "discount"],
                            "description": "a discount line has a negative amount and tax (a coupon, before tax)",
                        },
                    },
                },
            },
            "payments": {"type": "array", "items": {"type": "object", "required": ["provider", "amount", "status"]}},
            "payment_attempts": {
                "type": "array",
                "description": "automatic charges of the saved card, oldest first (one invoice only)",
                "items": {"$ref": "#/components/schemas/PaymentAttempt"},
            },
            "credited": {
                "type": "integer",
                "minimum": 0,
                "description": "minor units taken off by credit notes while unpaid",
            },
            "credit_applied": {
                "type": "integer",
                "minimum": 0,
                "description": "minor units paid by the credit balance",
            },
            "amount_due": {
                "type": "integer",
                "minimum": 0,
                "description": "minor units still owed: total - credited - credit_applied - paid (what is charged)",
            },
            "credit_notes": {
                "type": "array",
                "description": "corrections of this invoice, oldest first (one invoice only)",
                "items": {"$ref": "#/components/schemas/CreditNote"},
            },
            "refunds": {
                "type": "array",
                "description": "money given back on its payments (one invoice only)",
                "items": {
                    "type": "object",
                    "required": ["id", "amount", "currency", "status"],
                    "properties": {
                        "id": {"type": "integer"},
                        "amount": {"type": "integer", "minimum": 1},
                        "currency": {"type": "string"},
                        "status": {"enum": ["pending", "succeeded", "failed"]},
                        "created_at": DATETIME,
                    },
                },
            },
        },
    },
    "CreditNote": {
        "type": "object",
        "required": ["id", "number", "issued_at", "reason", "outcome", "subtotal", "tax", "total", "currency", "lines"],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string", "description": "its own gapless number (CREDIT_NOTE_PREFIX, e.g. CN-000007)"},
            "issued_at": DATETIME,
            "reason": {"type": "string"},
            "outcome": {
                "enum": ["reduce_due", "refund", "credit_balance"],
                "description": "off what was due (unpaid invoice), refunded, or added to the credit balance",
            },
            "subtotal": {"type": "integer", "minimum": 1, "description": "minor units, net"},
            "tax": {"type": "integer", "minimum": 0, "description": "the lines' tax credited in proportion, per line"},
            "total": {"type": "integer", "minimum": 1},
            "currency": {"type": "string"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["description", "amount", "tax"],
                    "properties": {
                        "description": {"type": "string"},
                        "amount": {"type": "integer"},
                        "tax": {"type": "integer"},
                    },
                },
            },
        },
    },
    "InvoicePage": {
        "type": "object",
        "required": ["items", "page", "per_page", "total"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"}},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
    "BillingDetails": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "company", "address", "country", "tax_id"],
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "company": {"type": "string", "maxLength": 200},
            "address": {"type": "string", "maxLength": 1000},
            "country": {"type": ["string", "null"], "pattern": "^[A-Z]{2}$", "description": "ISO 3166 alpha-2"},
            "tax_id": {
                "type": ["string", "null"],
                "description": "Normalised (an EU VAT ID with its country prefix, e.g. DE136695976); "
                "checked for format only, no online lookup",
            },
        },
    },
    "Plan": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "code",
            "name",
            "description",
            "price",
            "currency",
            "price_display",
            "interval",
            "trial_days",
            "features",
        ],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "price": {"type": "integer", "minimum": 0, "description": "minor units"},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "price_display": {"type": "string"},
            "interval": {"enum": ["month", "year"]},
            "trial_days": {"type": "integer", "minimum": 0},
            "features": {"$ref": "#/components/schemas/Features"},
        },
    },
    "Features": {
        "type": "object",
        "description": 'What a plan grants: limits and switches, e.g. {"seats": 10, "priority_support": true}',
        "additionalProperties": {"type": ["boolean", "integer", "string"]},
    },
    "PlanList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Plan"}}},
    },
    "PlanChange": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "kind",
            "amount",
            "currency",
            "amount_display",
            "days_left",
            "period_days",
            "effective",
            "credit",
            "new_period_end",
        ],
        "properties": {
            "kind": {
                "enum": ["upgrade", "downgrade", "switch", "keep", "interval_now", "interval_later"],
                "description": (
                    "interval_now: a new period of the new plan starts today (monthly to yearly), the unused "
                    "part of the paid period credited on its invoice; interval_later: from the end of the paid "
                    "period (yearly to monthly)"
                ),
            },
            "amount": {"type": "integer", "minimum": 0, "description": "charged now, minor units"},
            "currency": {"type": "string"},
            "amount_display": {"type": "string"},
            "days_left": {"type": "integer"},
            "period_days": {"type": "integer"},
            "effective": DATE,
            "credit": {"type": "integer", "minimum": 0, "description": "unused time credited on the invoice"},
            "new_period_end": {"oneOf": [DATE, {"type": "null"}]},
            "subscription": {"$ref": "#/components/schemas/Subscription"},
            "invoice": {"oneOf": [{"$ref": "#/components/schemas/Invoice"}, {"type": "null"}]},
        },
    },
    "Entitlements": {
        "type": "object",
        "additionalProperties": False,
        "required": ["customer_id", "entitled", "reason", "plan", "status", "paused", "features"],
        "properties": {
            "customer_id": {"type": "integer"},
            "entitled": {"type": "boolean", "description": "May use the plan's features now"},
            "reason": {"enum": ["no_subscription", "past_due", "paused", "ended", None]},
            "plan": {"type": ["string", "null"]},
            "status": {"oneOf": [{"enum": list(SUB_STATUSES)}, {"type": "null"}]},
            "paused": {"type": "boolean"},
            "features": {"$ref": "#/components/schemas/Features"},
        },
    },
    "Customer": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "email", "name", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "created_at": DATETIME,
        },
    },
    "CustomerPage": {
        "type": "object",
        "additionalProperties": False,
        "required": ["items", "page", "per_page", "total"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
    "Checkout": {
        "type": "object",
        "required": ["checkout_url", "invoice_id"],
        "additionalProperties": False,
        "properties": {"checkout_url": {"type": "string"}, "invoice_id": {"type": "integer"}},
    },
}


def _json(schema: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _pdf(description: str) -> dict:
    return {
        "description": description,
        "headers": {
            "Content-Disposition": {
                "description": 'attachment; filename="<invoice number>.pdf"',
                "schema": {"type": "string"},
            }
        },
        "content": {"application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}}},
    }


def _errors(*codes: int) -> dict:
    text = {
        400: "Malformed request",
        401: "Not authenticated",
        403: "Not allowed: CSRF token missing (session callers), a read-only server key writing, "
        "or the wrong kind of credential for this endpoint",
        404: "Not found (or not yours)",
        409: "Conflicts with the current state (or its Idempotency-Key's first request is still running)",
        413: "Body too large",
        415: "The body is not JSON",
        422: "Invalid values (or an Idempotency-Key reused with another body)",
        429: "Too many requests: wait Retry-After seconds",
        502: "Payment provider error",
        503: "PDF rendering is not available on this server",
    }
    out = {str(c): _json("Error", text[c]) for c in codes}
    if "429" in out:
        out["429"] = {
            **out["429"],
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        }
    return out


def _body(properties: dict, required: list[str]) -> dict:
    return {
        "required": bool(required),
        "content": {"application/json": {"schema": {"type": "object", "properties": properties, "required": required}}},
    }


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again (same body) to get the first answer instead of acting twice; "
    "keys are kept 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
CUSTOMER_ID = {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "integer"}}
INVOICE_ID = {"name": "invoice_id", "in": "path", "required": True, "schema": {"type": "integer"}}
PLAN_QUERY = {"name": "plan", "in": "query", "required": True, "schema": {"type": "string"}}
PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]
INVOICE_LIST_PARAMS = [{"name": "status", "in": "query", "schema": {"enum": list(INV_STATUSES)}}, *PAGE_PARAMS]
NO_BODY = {**_body({}, []), "required": False}


def _get(op_id: str, summary: str, ok: tuple[str, str], *errors: int, params: list | None = None) -> dict:
    return {
        "get": {
            "summary": summary,
            "operationId": op_id,
            "parameters": params or [],
            "responses": {"200": _json(*ok), **_errors(400, 401, 403, 429, *errors)},
        }
    }


def _get_pdf(op_id: str, summary: str, description: str) -> dict:
    return {
        "get": {
            "summary": summary,
            "operationId": op_id,
            "parameters": [INVOICE_ID],
            "responses": {"200": _pdf(description), **_errors(400, 401, 403, 404, 429, 503)},
        }
    }


def _post(
    op_id: str,
    summary: str,
    ok: tuple[str, str],
    request: dict,
    *errors: int,
    params: list | None = None,
    created=False,
) -> dict:
    return {
        "post": {
            "summary": summary,
            "operationId": op_id,
            "parameters": [*(params or []), IDEMPOTENCY_KEY],
            "requestBody": request,
            "responses": {
                "201" if created else "200": {
                    **_json(*ok),
                    "headers": {
                        "Idempotent-Replayed": {
                            "description": "'true' when this is the stored answer to an earlier request "
                            "with the same Idempotency-Key",
                            "schema": {"enum": ["true"]},
                        }
                    },
                },
                **_errors(400, 401, 403, 409, 413, 415, 422, 429, *errors),
            },
        }
    }


PLAN_BODY = _body({"plan": {"type": "string", "examples": ["pro"]}}, ["plan"])
SUBSCRIBE_BODY = _body(
    {
        "plan": {"type": "string", "examples": ["pro"]},
        "promotion_code": {
            "type": "string",
            "maxLength": 64,
            "examples": ["SUMMER25"],
            "description": "A promotion code (case-insensitive); its discount is a line of the invoices it "
            "covers, before tax. A code refused answers 422 with the reason as `code`: coupon_unknown, "
            "coupon_paused, coupon_expired, coupon_used_up, coupon_not_for_plan, coupon_already_used.",
        },
    },
    ["plan"],
)
CANCEL_BODY = {**_body({"at_once": {"type": "boolean", "default": False}}, []), "required": False}
SUBSCRIPTION = ("Subscription", "The subscription")


def _subscription_paths(prefix: str, op: str, who: str, params: list) -> dict:
    """The subscription actions, for the caller's own account or (server keys) a named customer."""
    return {
        f"{prefix}/preview-change/": _get(
            f"{op}PreviewChange",
            f"What changing {who} plan would cost now (changes nothing)",
            ("PlanChange", "The proration preview"),
            404,
            409,
            422,
            params=[*params, PLAN_QUERY],
        ),
        f"{prefix}/change-plan/": _post(
            f"{op}ChangePlan",
            f"Change {who} plan: upgrades now with a prorated invoice, "
            "downgrades now with the unused time credited to the customer's balance",
            ("PlanChange", "Changed"),
            PLAN_BODY,
            404,
            params=params,
        ),
        f"{prefix}/resume/": _post(
            f"{op}Resume", f"Undo {who} cancellation at period end", SUBSCRIPTION, NO_BODY, 404, params=params
        ),
        f"{prefix}/pause/": _post(
            f"{op}Pause",
            f"Pause collection of {who} subscription: no invoices until unpaused",
            SUBSCRIPTION,
            NO_BODY,
            404,
            params=params,
        ),
        f"{prefix}/unpause/": _post(
            f"{op}Unpause",
            f"Resume collection of {who} subscription (periods wholly inside the pause are not billed)",
            SUBSCRIPTION,
            NO_BODY,
            404,
            params=params,
        ),
    }


def spec() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Subscription billing API",
            "version": "1.1.0",
            "description": "Authenticate with `Authorization: Bearer <token>`: a customer's API token "
            "(create one under API tokens in the portal) acts on that customer's own account; a server key "
            "(created by staff in the console, read or write scope) acts on any customer under "
            "`/api/customers/{customer_id}/`. The browser session works too, plus an `X-CSRFToken` header. "
            "Every POST accepts an `Idempotency-Key` header. Money is in integer minor units.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/subscription/": _get(
                "getSubscription",
                "Your subscription, its collection method and saved card",
                ("Subscription", "The live subscription"),
                404,
            ),
            "/api/subscribe/": _post(
                "subscribe", "Subscribe to a plan", ("Subscription", "Subscribed"), SUBSCRIBE_BODY, created=True
            ),
            "/api/unsubscribe/": _post(
                "unsubscribe", "Cancel at period end, or at once", ("Subscription", "Canceled"), CANCEL_BODY, 404
            ),
            "/api/invoices/": _get(
                "listInvoices",
                "Your invoices, newest first",
                ("InvoicePage", "A page of invoices"),
                422,
                params=INVOICE_LIST_PARAMS,
            ),
            "/api/invoices/{invoice_id}/": _get(
                "getInvoice",
                "One invoice with lines and payments",
                ("Invoice", "The invoice"),
                404,
                params=[INVOICE_ID],
            ),
            "/api/invoices/{invoice_id}/pdf": _get_pdf(
                "getInvoicePdf",
                "The invoice as a PDF document (says PAID, with date and method, once paid)",
                "The invoice, named after its number",
            ),
            "/api/invoices/{invoice_id}/receipt/pdf": _get_pdf(
                "getReceiptPdf",
                "The receipt of a paid invoice as a PDF document",
                "The receipt, named after the invoice number",
            ),
            "/api/pay/": _post(
                "pay",
                "Start paying an open or overdue invoice",
                ("Checkout", "Send the customer to checkout_url"),
                _body({"invoice_id": {"type": "integer"}}, ["invoice_id"]),
                404,
                502,
            ),
            "/api/plans/": _get("listPlans", "The plans on offer, with prices and features", ("PlanList", "Plans")),
            **_subscription_paths("/api/subscription", "own", "your", []),
            "/api/entitlements/": _get(
                "ownEntitlements", "What you may use now", ("Entitlements", "Your entitlements")
            ),
            "/api/customers/": {
                **_get(
                    "listCustomers",
                    "Customers, oldest first (server keys)",
                    ("CustomerPage", "A page of customers"),
                    400,
                    422,
                    params=[{"name": "email", "in": "query", "schema": {"type": "string"}}, *PAGE_PARAMS],
                ),
                **_post(
                    "createCustomer",
                    "Create a customer (server keys with write scope); they set a password from an emailed link",
                    ("Customer", "Created"),
                    _body({"email": {"type": "string", "format": "email"}, "name": {"type": "string"}}, ["email"]),
                    created=True,
                ),
            },
            "/api/billing-details/": {
                **_get(
                    "getBillingDetails",
                    "Your billing details (printed on your invoices; the country decides the tax)",
                    ("BillingDetails", "Your billing details"),
                ),
                "patch": {
                    "summary": "Change your billing details: the fields sent, null or empty clears one",
                    "operationId": "updateBillingDetails",
                    "requestBody": {
                        **_body(
                            {
                                "name": {"type": ["string", "null"]},
                                "company": {"type": ["string", "null"]},
                                "address": {"type": ["string", "null"]},
                                "country": {"type": ["string", "null"], "examples": ["DE"]},
                                "tax_id": {"type": ["string", "null"], "examples": ["DE 136 695 976"]},
                            },
                            [],
                        ),
                        "required": False,
                    },
                    "responses": {
                        "200": _json("BillingDetails", "Saved"),
                        **_errors(400, 401, 403, 413, 415, 422, 429),
                    },
                },
            },
            "/api/customers/{customer_id}/": _get(
                "getCustomer", "One customer", ("Customer", "The customer"), 404, params=[CUSTOMER_ID]
            ),
            "/api/customers/{customer_id}/subscription/": {
                **_get(
                    "getCustomerSubscription",
                    "The customer's live subscription",
                    SUBSCRIPTION,
                    404,
                    params=[CUSTOMER_ID],
                ),
                **_post(
                    "subscribeCustomer",
                    "Subscribe the customer to a plan",
                    ("Subscription", "Subscribed"),
                    SUBSCRIBE_BODY,
                    404,
                    params=[CUSTOMER_ID],
                    created=True,
                ),
            },
            "/api/customers/{customer_id}/subscription/cancel/": _post(
                "cancelCustomerSubscription",
                "Cancel at period end, or at once",
                ("Subscription", "Canceled"),
                CANCEL_BODY,
                404,
                params=[CUSTOMER_ID],
            ),
            **_subscription_paths(
                "/api/customers/{customer_id}/subscription", "customer", "the customer's", [CUSTOMER_ID]
            ),
            "/api/customers/{customer_id}/entitlements/": _get(
                "customerEntitlements",
                "What the customer may use now (a past-due, paused or ended subscription says so)",
                ("Entitlements", "The customer's entitlements"),
                404,
                params=[CUSTOMER_ID],
            ),
            "/api/customers/{customer_id}/invoices/": _get(
                "listCustomerInvoices",
                "The customer's invoices, newest first",
                ("InvoicePage", "A page of invoices"),
                404,
                422,
                params=[CUSTOMER_ID, *INVOICE_LIST_PARAMS],
            ),
            "/api/customers/{customer_id}/invoices/{invoice_id}/": _get(
                "getCustomerInvoice",
                "One of the customer's invoices",
                ("Invoice", "The invoice"),
                404,
                params=[CUSTOMER_ID, INVOICE_ID],
            ),
        },
    }
