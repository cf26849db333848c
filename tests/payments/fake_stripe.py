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
        self.payment_methods: dict[str, dict] = {}
        self.setup_intents: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.refund_status = "succeeded"  # what a new refund reports ("pending": settled later by a webhook)
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
            reply = dict(self.replies[key])
            status = reply.pop("__status", 200)
            return Response(json.dumps(reply), status, content_type="application/json")
        body = self._route(request, form)
        if body is None:
            return Response(
                json.dumps(
                    {"error": {"type": "invalid_request_error", "message": f"No such resource: {request.path}"}}
                ),
                404,
                content_type="application/json",
            )
        if isinstance(body, tuple):  # an error Stripe remembers under the key, like a success
            status, error = body
            if key and request.method == "POST":
                self.replies[key] = {"__status": status, **error}
            return Response(json.dumps(error), status, content_type="application/json")
        if key and request.method == "POST":
            self.replies[key] = body
        return self._json(body)

    def _route(self, request: Request, form: dict):
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/v1/customers":
            cid = f"cus_{next(self._ids)}"
            self.customers[cid] = {"id": cid, "object": "customer", "email": form.get("email")}
            return self.customers[cid]
        if request.method == "POST" and path == "/v1/checkout/sessions" and form.get("mode") == "setup":
            sid = f"cs_test_{next(self._ids)}"
            self.sessions[sid] = {
                "id": sid,
                "object": "checkout.session",
                "mode": "setup",
                "url": f"https://checkout.stripe.test/c/{sid}",
                "status": "open",
                "payment_status": "no_payment_required",
                "customer": form.get("customer"),
                "setup_intent": None,
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                "success_url": form.get("success_url"),
                "cancel_url": form.get("cancel_url"),
            }
            return self.sessions[sid]
        if request.method == "POST" and path == "/v1/payment_methods":
            return self._new_card(form.get("card[number]", ""), form.get("card[exp_month]"), form.get("card[exp_year]"))
        if path.startswith("/v1/payment_methods/"):
            return self._payment_method(request.method, path.split("/")[3:], form)
        if request.method == "GET" and path.startswith("/v1/setup_intents/"):
            return self.setup_intents.get(path.rsplit("/", 1)[1])
        if request.method == "POST" and path == "/v1/refunds":
            return self._refund(form)
        if request.method == "GET" and path == "/v1/refunds":
            charge = request.args.get("charge")
            found = [r for r in self.refunds.values() if r["charge"] == charge]
            return {"object": "list", "data": found, "has_more": False, "url": "/v1/refunds"}
        if request.method == "POST" and path == "/v1/payment_intents":
            return self._charge(form)
        if request.method == "GET" and path.startswith("/v1/payment_intents/"):
            return self.payment_intents.get(path.rsplit("/", 1)[1])
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

    # -- saved cards and off-session charges ----------------------------------------
    CARDS = {  # Stripe's test cards: what an off-session charge does
        "4242424242424242": None,
        "4000000000000341": "card_declined",
        "4000002500003155": "authentication_required",
        "4000000000009995": "insufficient_funds",
    }

    def _new_card(self, number: str, exp_month, exp_year) -> dict:
        pid = f"pm_{next(self._ids)}"
        self.payment_methods[pid] = {
            "id": pid,
            "object": "payment_method",
            "type": "card",
            "customer": None,
            "card": {
                "brand": "visa",
                "last4": number[-4:],
                "exp_month": int(exp_month or 12),
                "exp_year": int(exp_year or 2034),
            },
            "_number": number,
        }
        return self._public(self.payment_methods[pid])

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _payment_method(self, method: str, parts: list[str], form: dict):
        pm = self.payment_methods.get(parts[0])
        if pm is None:
            return None
        if method == "POST" and parts[1:] == ["attach"]:
            pm["customer"] = form.get("customer")
        elif method == "POST" and parts[1:] == ["detach"]:
            pm["customer"] = None
        return self._public(pm)

    def complete_setup(self, session_id: str, number: str = "4242424242424242") -> str:
        """The customer typed a card on Stripe's set-up page: a payment method attached to the
        session's customer, and a succeeded SetupIntent. Returns the payment method's id."""
        s = self.sessions[session_id]
        pm = self._new_card(number, 12, 2034)
        self.payment_methods[pm["id"]]["customer"] = s["customer"]
        si = f"seti_{next(self._ids)}"
        self.setup_intents[si] = {
            "id": si,
            "object": "setup_intent",
            "status": "succeeded",
            "payment_method": pm["id"],
            "customer": s["customer"],
        }
        s.update(status="complete", setup_intent=si)
        return pm["id"]

    def _charge(self, form: dict):
        pm = self.payment_methods.get(form.get("payment_method", ""))
        if pm is None or pm["customer"] != form.get("customer"):
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": "No such PaymentMethod",
                }
            }
        pid = f"pi_{next(self._ids)}"
        outcome = self.CARDS.get(pm["_number"], "card_declined")
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "customer": form.get("customer"),
            "payment_method": pm["id"],
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "status": "succeeded",
            "last_payment_error": None,
            "next_action": None,
        }
        self.payment_intents[pid] = intent
        if outcome is None:
            return intent
        if outcome == "authentication_required":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk"}
            error = {
                "type": "card_error",
                "code": "authentication_required",
                "message": "This payment requires authentication.",
            }
        else:
            intent["status"] = "requires_payment_method"
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": outcome,
                "message": "Your card was declined.",
            }
        intent["last_payment_error"] = error
        return 402, {"error": {**error, "payment_intent": intent}}

    def _paid(self, intent_id: str) -> int | None:
        """What the payment intent took: an off-session charge's, or a completed Checkout's."""
        intent = self.payment_intents.get(intent_id)
        if intent is not None:
            return intent["amount"] if intent["status"] == "succeeded" else None
        for s in self.sessions.values():
            if s.get("payment_intent") == intent_id and s.get("payment_status") == "paid":
                return s["amount_total"]
        return None

    def _refund(self, form: dict):
        intent = form.get("payment_intent", "")
        paid = self._paid(intent)
        if paid is None:
            return 400, {
                "error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such payment"}
            }
        charge = f"ch_{intent[3:]}"
        given = sum(r["amount"] for r in self.refunds.values() if r["charge"] == charge and r["status"] != "failed")
        amount = int(form.get("amount") or paid - given)
        if amount > paid - given:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded" if given >= paid else "amount_too_large",
                    "message": f"Refund amount ({amount}) is greater than unrefunded amount ({paid - given})",
                }
            }
        rid = f"re_{next(self._ids)}"
        self.refunds[rid] = {
            "id": rid,
            "object": "refund",
            "amount": amount,
            "charge": charge,
            "payment_intent": intent,
            "currency": "usd",
            "status": self.refund_status,
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        }
        return self.refunds[rid]

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> str:
        """A pending refund finishes; returns its charge id (what `charge.refunded` names)."""
        self.refunds[refund_id]["status"] = status
        return self.refunds[refund_id]["charge"]

    def succeed(self, intent_id: str) -> None:
        """The customer authenticated (or the bank settled): the intent succeeded."""
        self.payment_intents[intent_id].update(status="succeeded", last_payment_error=None, next_action=None)

    @staticmethod
    def _json(body: dict) -> Response:
        return Response(json.dumps(body), 200, content_type="application/json")


def signed(payload: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send for this event."""
    body = json.dumps(payload).encode()
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={mac}"


def event(event_id: str, type_: str, session_id: str, **fields) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": {"id": session_id, "object": "checkout.session", **fields}},
    }
