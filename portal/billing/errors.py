"""The one exception type the billing core raises for a refused request."""


class BillingError(Exception):
    """A request the rules refuse; the message is safe to show to the person asking.

    `code` is a stable machine-readable reason for the JSON API.
    """

    def __init__(self, message: str, code: str = "invalid", status: int = 409):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
