"""Outbound webhooks in the console: register, edit, disable and enable endpoints, rotate or
reveal a secret (audited), send a test event; see deliveries per endpoint and per event,
with each attempt's answer, and resend one. The core (billing.webhooks) does the work
and writes the audit entries; the request's unit of work commits."""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..billing import events, webhooks
from ..billing.errors import BillingError
from ..extensions import db
from ..inputs import int64
from ..models import DLV_FAILED, DLV_PENDING, DLV_SUCCEEDED, OutboundEvent, WebhookDelivery, WebhookEndpoint
from ..runtime import now
from ..webhooks import urls
from .base import StaffOnly

PAGE = 50
DELIVERY_LABELS = {DLV_PENDING: "Pending", DLV_SUCCEEDED: "Delivered", DLV_FAILED: "Failed"}


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    url = StringField(
        "URL",
        validators=[DataRequired(message="Give the endpoint's URL."), Length(max=urls.MAX_URL)],
        description="Where your application receives events: https://…",
    )
    description = StringField("Description", validators=[Length(max=200)])
    event_types = CheckboxesField(
        "Events to send",
        choices=[(t, t) for t in events.EVENT_TYPES],
        validators=[DataRequired(message="Choose at least one event to send.")],
    )

    def __init__(self, *args, allow_private: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._allow_private = allow_private

    def validate_url(self, field):
        try:
            field.data = urls.check(field.data or "", self._allow_private)
        except urls.BadURL as exc:
            raise ValidationError(str(exc)) from None


class DisableForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[Length(max=400)])


def _id(raw) -> int:
    try:
        return int64(str(raw))
    except ValueError:
        abort(404)


class WebhooksView(StaffOnly, BaseView):
    def _allow_private(self) -> bool:
        return bool(self.admin.app.config["WEBHOOKS_ALLOW_PRIVATE_URLS"])

    def _endpoint(self, endpoint_id) -> WebhookEndpoint:
        return db.session.get(WebhookEndpoint, _id(endpoint_id)) or abort(404)

    def _checked(self) -> None:
        """Every POST here is a form with its CSRF token."""
        if not FlaskForm().validate_on_submit():
            abort(400, description="The form has expired: reload the page and try again.")

    @expose("/")
    def index(self):
        endpoints = db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        counts: dict[int, int] = {
            endpoint_id: waiting
            for endpoint_id, waiting in db.session.execute(
                select(WebhookDelivery.endpoint_id, func.count())
                .where(WebhookDelivery.status == DLV_PENDING)
                .group_by(WebhookDelivery.endpoint_id)
            ).tuples()
        }
        return self.render("staff/webhooks/index.html", endpoints=endpoints, pending=counts)

    def _form_page(self, form, endpoint=None, status=200):
        return self.render("staff/webhooks/form.html", form=form, endpoint=endpoint), status

    @expose("/new", methods=("GET", "POST"))
    def new(self):
        form = EndpointForm(allow_private=self._allow_private())
        if request.method == "GET":
            form.event_types.data = list(events.EVENT_TYPES)
            return self._form_page(form)
        if not form.validate_on_submit():
            return self._form_page(form, status=422)
        endpoint = webhooks.create_endpoint(
            db.session,
            form.url.data,
            form.event_types.data,
            form.description.data or "",
            now(),
            actor_id=current_user.id,
        )
        return self._secret_page(endpoint, "Endpoint added. Copy its signing secret now.")

    def _secret_page(self, endpoint, message):
        response = make_response(self.render("staff/webhooks/secret.html", endpoint=endpoint, message=message))
        response.headers["Cache-Control"] = "no-store"  # the secret is never kept by a cache
        return response

    @expose("/<endpoint_id>/")
    def endpoint_view(self, endpoint_id):
        endpoint = self._endpoint(endpoint_id)
        status = request.args.get("status")
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        if status in DELIVERY_LABELS:
            query = query.where(WebhookDelivery.status == status)
        deliveries = db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(PAGE)).all()
        return self.render(
            "staff/webhooks/endpoint.html",
            endpoint=endpoint,
            deliveries=deliveries,
            status=status if status in DELIVERY_LABELS else "",
            labels=DELIVERY_LABELS,
            form=FlaskForm(),
            disable_form=DisableForm(),
        )

    @expose("/<endpoint_id>/edit", methods=("GET", "POST"))
    def edit(self, endpoint_id):
        endpoint = self._endpoint(endpoint_id)
        form = EndpointForm(allow_private=self._allow_private())
        if request.method == "GET":
            form.url.data, form.description.data = endpoint.url, endpoint.description
            form.event_types.data = endpoint.event_types
            return self._form_page(form, endpoint)
        if not form.validate_on_submit():
            return self._form_page(form, endpoint, 422)
        webhooks.update_endpoint(
            db.session,
            endpoint,
            form.url.data,
            form.event_types.data,
            form.description.data or "",
            now(),
            actor_id=current_user.id,
        )
        flash("Endpoint saved.", "success")
        return redirect(url_for(".endpoint_view", endpoint_id=endpoint.id), 303)

    @expose("/<endpoint_id>/disable", methods=("POST",))
    def disable(self, endpoint_id):
        endpoint = self._endpoint(endpoint_id)
        form = DisableForm()
        if not form.validate_on_submit():
            abort(400, description="The form has expired or the reason is too long.")
        if endpoint.enabled:
            reason = (form.reason.data or "").strip() or f"Disabled by {current_user.email}."
            webhooks.disable(db.session, endpoint, reason, now(), actor_id=current_user.id)
            flash("Endpoint disabled: nothing is sent to it; its events wait until it is enabled.", "success")
        return redirect(url_for(".endpoint_view", endpoint_id=endpoint.id), 303)

    @expose("/<endpoint_id>/enable", methods=("POST",))
    def enable(self, endpoint_id):
        self._checked()
        endpoint = self._endpoint(endpoint_id)
        if not endpoint.enabled:
            webhooks.enable(db.session, endpoint, now(), actor_id=current_user.id)
            flash("Endpoint enabled: what waited is being sent, in order.", "success")
        return redirect(url_for(".endpoint_view", endpoint_id=endpoint.id), 303)

    @expose("/<endpoint_id>/rotate", methods=("POST",))
    def rotate(self, endpoint_id):
        self._checked()
        endpoint = self._endpoint(endpoint_id)
        webhooks.rotate_secret(db.session, endpoint, now(), actor_id=current_user.id)
        return self._secret_page(endpoint, "New secret made: deliveries from now on are signed with it.")

    @expose("/<endpoint_id>/reveal", methods=("POST",))
    def reveal(self, endpoint_id):
        self._checked()
        endpoint = self._endpoint(endpoint_id)
        webhooks.reveal_secret(db.session, endpoint, now(), actor_id=current_user.id)
        return self._secret_page(endpoint, "The endpoint's signing secret (this look is in the audit log).")

    @expose("/<endpoint_id>/test", methods=("POST",))
    def test(self, endpoint_id):
        self._checked()
        endpoint = self._endpoint(endpoint_id)
        if not endpoint.enabled:
            flash("Enable the endpoint first: nothing is sent to a disabled endpoint.", "error")
        else:
            webhooks.send_test(db.session, endpoint, now(), actor_id=current_user.id)
            flash("Test event queued: its delivery shows below within a few seconds.", "success")
        return redirect(url_for(".endpoint_view", endpoint_id=endpoint.id), 303)

    @expose("/<endpoint_id>/delete", methods=("POST",))
    def delete(self, endpoint_id):
        self._checked()
        endpoint = self._endpoint(endpoint_id)
        url = endpoint.url
        webhooks.delete_endpoint(db.session, endpoint, now(), actor_id=current_user.id)
        flash(f"Endpoint {url} deleted.", "success")
        return redirect(url_for(".index"), 303)

    @expose("/deliveries/<delivery_id>/")
    def delivery(self, delivery_id):
        delivery = db.session.get(WebhookDelivery, _id(delivery_id)) or abort(404)
        return self.render(
            "staff/webhooks/delivery.html",
            delivery=delivery,
            payload=events.payload(delivery.event),
            labels=DELIVERY_LABELS,
            form=FlaskForm(),
        )

    @expose("/deliveries/<delivery_id>/resend", methods=("POST",))
    def resend(self, delivery_id):
        self._checked()
        delivery = db.session.get(WebhookDelivery, _id(delivery_id)) or abort(404)
        try:
            webhooks.resend(db.session, delivery, now(), actor_id=current_user.id)
        except BillingError as exc:
            flash(exc.message, "error")
        else:
            flash(f"{delivery.event.type} ({delivery.event.msg_id}) will be sent again now.", "success")
        if request.form.get("back") == "event":
            return redirect(url_for(".event", event_id=delivery.event_id), 303)
        return redirect(url_for(".delivery", delivery_id=delivery.id), 303)

    @expose("/events/")
    def events_list(self):
        event_type = request.args.get("type", "")
        before = request.args.get("before")
        query = select(OutboundEvent)
        if event_type in events.EVENT_TYPES or event_type == events.TEST_EVENT:
            query = query.where(OutboundEvent.type == event_type)
        else:
            event_type = ""
        if before:
            query = query.where(OutboundEvent.id < _id(before))
        rows = db.session.scalars(query.order_by(OutboundEvent.id.desc()).limit(PAGE)).all()
        return self.render(
            "staff/webhooks/events.html",
            rows=rows,
            event_type=event_type,
            types=(*events.EVENT_TYPES, events.TEST_EVENT),
            older=rows[-1].id if len(rows) == PAGE else None,
        )

    @expose("/events/<event_id>/")
    def event(self, event_id):
        event = db.session.get(OutboundEvent, _id(event_id)) or abort(404)
        deliveries = db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == event.id).order_by(WebhookDelivery.endpoint_id)
        ).all()
        return self.render(
            "staff/webhooks/event.html",
            event=event,
            payload=events.payload(event),
            deliveries=deliveries,
            labels=DELIVERY_LABELS,
            form=FlaskForm(),
        )
