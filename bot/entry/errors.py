"""Refusals a visitor can act on: an HTTP status, a stable code and a Simplified-Chinese message."""

from __future__ import annotations


class EntryError(Exception):
    """Bad input or an unavailable service on the entry path; ``message`` is shown to the person.

    ``code`` is a stable English token for logs and API clients (``bad_lat``, ``unknown_channel``).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def bad_request(code: str, message: str) -> EntryError:
    """A 400 refusal."""
    return EntryError(400, code, message)


def not_found(code: str, message: str) -> EntryError:
    """A 404 refusal."""
    return EntryError(404, code, message)


def conflict(code: str, message: str) -> EntryError:
    """A 409 refusal: the request was fine, the state of the group does not allow it."""
    return EntryError(409, code, message)
