"""Tax rates: one active rate per country, a percentage with up to four decimals (25.5 %).

Staff never delete a rate: issued invoices keep the rate and name they were issued
with on their lines, and an inactive rate simply stops applying to new ones.
"""

from __future__ import annotations

from sqlalchemy import select
from wtforms import SelectField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from ..billing.customers import countries
from ..billing.taxes import format_percent
from ..extensions import db
from ..models import TaxRate
from .base import StaffModelView


def _percent(view, context, model, name):
    return f"{format_percent(model.percent)} %"


class TaxRateView(StaffModelView):
    can_delete = False  # deactivate instead
    column_list = ("name", "percent", "country", "inclusive", "active", "created_at")
    column_formatters = {"percent": _percent}
    column_filters = ("country", "active", "inclusive")
    column_default_sort = ("country", False)
    form_columns = ("name", "percent", "country", "inclusive", "active")
    form_overrides = {"country": SelectField}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=80)], "description": "As printed on invoices, e.g. VAT"},
        "percent": {
            "label": "Percent",
            "places": 4,
            "description": "e.g. 25.5 for 25.5 %; up to four decimals",
            "validators": [
                # InputRequired, not DataRequired: 0 (a zero rate) is an answer.
                InputRequired(message="Give the rate in percent, e.g. 19 or 25.5."),
                NumberRange(min=0, max=100, message="A rate is from 0 to 100 %%."),
            ],
        },
        "country": {
            "label": "Country",
            "choices": [("", "Choose a country…"), *countries()],
            "validators": [DataRequired(message="Choose the country whose customers pay this rate.")],
        },
        "inclusive": {"label": "Inclusive (prices already contain this tax)"},
    }

    def on_model_change(self, form, model, is_created):
        if model.percent is not None and model.percent.as_tuple().exponent < -4:
            raise ValidationError("A rate has at most four decimals, e.g. 25.5 or 7.6543.")
        if model.active:
            others = select(TaxRate.id).where(TaxRate.country == model.country, TaxRate.active)
            if model.id is not None:
                others = others.where(TaxRate.id != model.id)
            with db.session.no_autoflush:  # the new rate itself is not "another"
                other = db.session.scalar(others)
            if other is not None:
                raise ValidationError(
                    f"{model.country} already has an active rate: deactivate it first, so invoices never "
                    "have to choose between two."
                )
        super().on_model_change(form, model, is_created)
