"""A small local stand-in for the Stripe API endpoints the app calls.

Speaks Stripe's wire format (form-encoded requests, JSON objects, error bodies,
Idempotency-Key replay) so the real `stripe` SDK is exercised end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class FakeStripe:
    def __init__(self):
        self.requests: list[dict] = []
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.replies: dict[str, dict] = {}  # idempotency key -> response body
        self.fail_next: tuple[int, dict] | None = None
        self.new_session_fields: dict = {}  # merged into every session created (tampering)
        self._ids = itertools.count(1)
        self._server = None

    # -- control from tests -------------------------------------------------
    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()

    def complete(self, session_id: str, paid: bool = True, amount: int | None = None) -> None:
        s = self.sessions[session_id]
        s.update(status="complete", payment_status="paid" if paid else "unpaid", payment_intent=f"pi_{session_id[3:]}")
        if amount is not None:
            s["amount_total"] = amount

    def tamper(self, session_id: str, **fields) -> None:
        """Make Stripe answer with a session the app must not trust (fields as Stripe sends them)."""
        self.sessions[session_id].update(fields)

    def expire(self, session_id: str) -> None:
        self.sessions[session_id].update(status="expired")

    def refuse_next(self, status: int = 402, message: str = "Your card was declined.") -> None:
        self.fail_next = (status, {"error": {"type": "card_error", "code": "card_declined", "message": message}})

    # -- the HTTP side -------------------------------------------------------
    @Request.application
    def wsgi(self, request: Request) -> Response:
        form = request.form.to_dict()
        key = request.headers.get("Idempotency-Key")
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "params": form,
                "idempotency_key": key,
                "auth": request.headers.get("Authorization"),
            }
        )
        if self.fail_next:
            status, body = self.fail_next
            self.fail_next = None
            return Response(json.dumps(body), status, content_type="application/json")
        if key and key in self.replies:
            return self._json(self.replies[key])
        body = self._route(request, form)
        if body is None:
            return Response(
                json.dumps(
                    {"error": {"type": "invalid_request_error", "message": f"No such resource: {request.path}"}}
                ),
                404,
                content_type="application/json",
            )
        if key and request.method == "POST":
            self.replies[key] = body
        return self._json(body)

    def _route(self, request: Request, form: dict):
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/v1/customers":
            cid = f"cus_{next(self._ids)}"
            self.customers[cid] = {"id": cid, "object": "customer", "email": form.get("email")}
            return self.customers[cid]
        if request.method == "POST" and path == "/v1/checkout/sessions":
            sid = f"cs_test_{next(self._ids)}"
            amount = int(form["line_items[0][price_data][unit_amount]"]) * int(form.get("line_items[0][quantity]", 1))
            self.sessions[sid] = {
                "id": sid,
                "object": "checkout.session",
                "mode": form.get("mode"),
                "url": f"https://checkout.stripe.test/c/{sid}",
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": amount,
                "currency": form["line_items[0][price_data][currency]"],
                "client_reference_id": form.get("client_reference_id"),
                "customer": form.get("customer"),
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                "payment_intent": None,
                "success_url": form.get("success_url"),
                "cancel_url": form.get("cancel_url"),
            }
            self.sessions[sid].update(self.new_session_fields)
            return self.sessions[sid]
        if request.method == "GET" and path.startswith("/v1/checkout/sessions/"):
            return self.sessions.get(path.rsplit("/", 1)[1])
        return None

    @staticmethod
    def _json(body: dict) -> Response:
        return Response(json.dumps(body), 200, content_type="application/json")


def signed(payload: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send for this event."""
    body = json.dumps(payload).encode()
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={mac}"


def event(event_id: str, type_: str, session_id: str) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": {"id": session_id, "object": "checkout.session"}},
    }
