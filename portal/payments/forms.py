"""The demo provider's card form (test mode only: Stripe's own page takes real cards)."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp


class DemoCardForm(FlaskForm):
    number = StringField(
        "Card number",
        validators=[
            DataRequired("Enter the card number."),
            Length(max=30),
            Regexp(r"^[0-9 ]+$", message="A card number has digits only."),
        ],
    )
    exp_month = IntegerField(
        "Expiry month", validators=[DataRequired("Enter the month."), NumberRange(1, 12, "A month is 1 to 12.")]
    )
    exp_year = IntegerField(
        "Expiry year",
        validators=[DataRequired("Enter the year."), NumberRange(2000, 2100, "Enter the year with four digits.")],
    )
