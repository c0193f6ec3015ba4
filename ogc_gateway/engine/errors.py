"""Typed errors raised by the engine and by the parsers; each face renders them in its own format."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class. `http_status` is the status a face uses when it reports real HTTP codes."""

    http_status = 500
    ows_code = "NoApplicableCode"

    def __init__(self, message: str = "An error occurred.", *, details: list[str] | None = None,
                 locator: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.locator = locator


class InvalidParameter(GatewayError):
    """A request parameter is missing, malformed or out of range."""

    http_status = 400
    ows_code = "InvalidParameterValue"

    def __init__(self, name: str, why: str):
        super().__init__(f"Invalid or missing input parameters: {name}: {why}",
                         details=[f"{name}: {why}"], locator=name)
        self.name = name
        self.why = why


class TooLarge(InvalidParameter):
    """The request exceeds a configured limit; refused before any pixel is read."""


class NotFound(GatewayError):
    """A service, item, operation or output file that does not exist."""

    http_status = 404
    ows_code = "NotFound"


class ConfigError(Exception):
    """A configuration with problems: one line per problem (file, key, what is wrong, suggestion)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
