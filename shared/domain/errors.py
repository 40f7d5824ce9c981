"""Typed refusals with a machine code and a French message; the HTTP edge maps them to statuses."""

from __future__ import annotations


class Refusal(Exception):
    status = 400
    headers: dict[str, str] = {}  # sent with the answer (e.g. Retry-After)

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.details}


class InvalidInput(Refusal):
    """422: the request names something that does not exist or is not allowed as a value."""

    status = 422

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(code, message, fields=[{"field": field, "message": message}])


class Forbidden(Refusal):
    """403: the role may not do this, or the body names another establishment."""

    status = 403


class NotFound(Refusal):
    """404: unknown student, or one the caller may not see."""

    status = 404

    def __init__(self) -> None:
        super().__init__("student_not_found", "Élève introuvable.")


class RuleViolation(Refusal):
    """409: a rule of SPEC §3.1 refuses the command; `code` names the rule."""

    status = 409
