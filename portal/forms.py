"""Forms shared by more than one blueprint."""

from flask_wtf import FlaskForm


class ActionForm(FlaskForm):
    """A button: CSRF token only."""
