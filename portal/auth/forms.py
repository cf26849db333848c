from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, StopValidation

from ..passwords import weakness

MIN_PASSWORD = 8


def not_common(form, field):
    """Refuse passwords from breach lists, and ones made of the user's own email or name."""
    if field.errors:  # too short already says enough
        return
    inputs = [getattr(form, name).data for name in ("email", "name") if hasattr(form, name)]
    if current_user and current_user.is_authenticated:
        inputs += [current_user.email, current_user.name]
    reason = weakness(field.data or "", tuple(str(v) for v in inputs if v))
    if reason:
        raise StopValidation(reason)


def new_password(label="Password"):
    return PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD, max=128, message=f"Use at least {MIN_PASSWORD} characters."),
            not_common,
        ],
    )


def confirm(field="password"):
    return PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo(field, message="The two passwords differ.")]
    )


class SignupForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = new_password()
    confirm = confirm()
    plan = HiddenField()  # the plan chosen on the pricing page, if any


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = new_password("New password")
    confirm = confirm()


class RequestLinkForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])


class SetPasswordForm(FlaskForm):
    password = new_password("New password")
    confirm = confirm()


class ConfirmForm(FlaskForm):
    """Only the CSRF token: the button that finishes a sign-up."""
