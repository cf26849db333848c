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
            "collection_method",
            "payment_method",
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
            "collection_method": {
                "enum": ["charge_automatically", "send_invoice"],
                "description": "charge_automatically: each invoice is charged to the saved card when issued",
            },
            "payment_method": {
                "oneOf": [{"$ref": "#/components/schemas/PaymentMethod"}, {"type": "null"}],
                "description": "The saved card invoices are charged to, or null",
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
            "number": {"type": "string", "pattern": "^INV-[0-9]{6,}$"},
            "status": {"enum": list(INV_STATUSES)},
            "kind": {"enum": ["period", "proration"]},
            "description": {"type": "string"},
            "period_start": DATE,
            "period_end": DATE,
            "total": {"type": "integer", "minimum": 0, "description": "minor units"},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "total_display": {"type": "string"},
            "issued_at": DATETIME,
            "due_date": DATE,
            "paid_at": {"type": ["string", "null"], "format": "date-time"},
            "lines": {"type": "array", "items": {"type": "object", "required": ["description", "amount"]}},
            "payments": {"type": "array", "items": {"type": "object", "required": ["provider", "amount", "status"]}},
            "payment_attempts": {
                "type": "array",
                "description": "automatic charges of the saved card, oldest first (one invoice only)",
                "items": {"$ref": "#/components/schemas/PaymentAttempt"},
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


def _errors(*codes: int) -> dict:
    text = {
        400: "Malformed request",
        401: "Not authenticated",
        403: "CSRF token missing (session callers)",
        404: "Not found (or not yours)",
        409: "Conflicts with the current state",
        413: "Body too large",
        422: "Invalid values",
        502: "Payment provider error",
    }
    return {str(c): _json("Error", text[c]) for c in codes}


def _body(properties: dict, required: list[str]) -> dict:
    return {
        "required": bool(required),
        "content": {"application/json": {"schema": {"type": "object", "properties": properties, "required": required}}},
    }


def spec() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Subscription billing API",
            "version": "1.0.0",
            "description": "Authenticate with `Authorization: Bearer <token>` (create one under "
            "API tokens in the portal), or the browser session plus an "
            "`X-CSRFToken` header. Money is in integer minor units.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/subscription/": {
                "get": {
                    "summary": "Your subscription, its collection method and saved card",
                    "operationId": "getSubscription",
                    "responses": {"200": _json("Subscription", "The live subscription"), **_errors(401, 404)},
                }
            },
            "/api/subscribe/": {
                "post": {
                    "summary": "Subscribe to a plan",
                    "operationId": "subscribe",
                    "requestBody": _body({"plan": {"type": "string", "examples": ["pro"]}}, ["plan"]),
                    "responses": {"201": _json("Subscription", "Subscribed"), **_errors(400, 401, 403, 409, 413, 422)},
                }
            },
            "/api/unsubscribe/": {
                "post": {
                    "summary": "Cancel at period end, or at once",
                    "operationId": "unsubscribe",
                    "requestBody": {**_body({"at_once": {"type": "boolean", "default": False}}, []), "required": False},
                    "responses": {"200": _json("Subscription", "Canceled"), **_errors(400, 401, 403, 404, 409, 422)},
                }
            },
            "/api/invoices/": {
                "get": {
                    "summary": "Your invoices, newest first",
                    "operationId": "listInvoices",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"enum": list(INV_STATUSES)}},
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                        {
                            "name": "per_page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                        },
                    ],
                    "responses": {"200": _json("InvoicePage", "A page of invoices"), **_errors(401, 422)},
                }
            },
            "/api/invoices/{invoice_id}/": {
                "get": {
                    "summary": "One invoice with lines and payments",
                    "operationId": "getInvoice",
                    "parameters": [
                        {"name": "invoice_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {"200": _json("Invoice", "The invoice"), **_errors(401, 404)},
                }
            },
            "/api/pay/": {
                "post": {
                    "summary": "Start paying an open or overdue invoice",
                    "operationId": "pay",
                    "requestBody": _body({"invoice_id": {"type": "integer"}}, ["invoice_id"]),
                    "responses": {
                        "200": _json("Checkout", "Send the customer to checkout_url"),
                        **_errors(400, 401, 403, 404, 409, 413, 422, 502),
                    },
                }
            },
        },
    }
