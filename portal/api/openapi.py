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
                    },
                },
            },
            "payments": {"type": "array", "items": {"type": "object", "required": ["provider", "amount", "status"]}},
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
            "/api/billing-details/": {
                "get": {
                    "summary": "Your billing details (printed on your invoices; the country decides the tax)",
                    "operationId": "getBillingDetails",
                    "responses": {"200": _json("BillingDetails", "Your billing details"), **_errors(401)},
                },
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
                        **_errors(400, 401, 403, 413, 422),
                    },
                },
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
