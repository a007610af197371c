"""The one exception type for mistakes in what the user gave us (config values, files, arguments)."""


class UserError(Exception):
    """Bad user input. The CLI prints the message as one line and exits with code 2."""


def require(condition: bool, key: str, value, allowed: str) -> None:
    """Raise a UserError naming `key`, the bad `value` and what is allowed, unless `condition` holds."""
    if not condition:
        raise UserError(f"{key}={value!r} is not allowed: {allowed}")


class TrainingFailed(Exception):
    """A fit that cannot go on (a non-finite loss). The CLI prints the message and exits with code 3."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report
