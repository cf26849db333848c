from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class PlanForm(FlaskForm):
    plan = HiddenField(validators=[DataRequired()])
    # Checked by the core (billing/coupons.py), which says why a code is refused.
    promotion_code = StringField("Promotion code (optional)", validators=[Length(max=64)])


class PromotionCodeForm(FlaskForm):
    promotion_code = StringField("Promotion code", validators=[Length(max=64)])


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])


class BillingDetailsForm(FlaskForm):
    """Name, company, address, country and tax ID printed on the customer's invoices.

    The rules (country from the list, tax ID format) are the core's
    (billing/customers.check_details); this form only carries the fields.
    """

    name = StringField("Name on invoices", validators=[Length(max=200)])
    company = StringField("Company (optional)", validators=[Length(max=200)])
    address = TextAreaField("Address", validators=[Length(max=1000)])
    country = SelectField("Country", choices=[], validate_choice=False)
    tax_id = StringField("Tax ID / VAT number (optional)", validators=[Length(max=40)])
