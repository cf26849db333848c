from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

MIN_PASSWORD = 8


def new_password(label="Password"):
    return PasswordField(label, validators=[
        DataRequired(), Length(min=MIN_PASSWORD, max=128,
                               message=f"Use at least {MIN_PASSWORD} characters.")])


def confirm(field="password"):
    return PasswordField("Repeat password", validators=[
        DataRequired(), EqualTo(field, message="The two passwords differ.")])


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
