"""Partner conversion events: the JSON of DESIGN.md "Partner webhooks", or a CSV row.

Both paths go through :func:`parse_event`, so a file and a webhook accept exactly the same
events and refuse the same mistakes with the same words.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.opsdata.models import ReferralEventType
from scheduler.clock import SHANGHAI

MAX_BODY_BYTES = 64 * 1024
CSV_COLUMNS = ("event_id", "type", "referral_code", "applicant", "occurred_at")
CSV_OPTIONAL = ("referrer_applicant",)


class EventError(ValueError):
    """An event that cannot be taken: ``code`` is a stable token, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConversionEvent(BaseModel):
    """One partner event. ``occurred_at`` without an offset is read as Asia/Shanghai."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=200)
    type: ReferralEventType
    referral_code: str = Field(min_length=1, max_length=40)
    applicant: str = Field(min_length=1, max_length=200)
    occurred_at: datetime
    referrer_applicant: str | None = Field(default=None, max_length=200)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=SHANGHAI)

    @field_validator("referrer_applicant", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v


def parse_event(data: Mapping[str, Any]) -> ConversionEvent:
    """Validate one event; :class:`EventError` names the first bad field."""
    try:
        return ConversionEvent.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        code = "unknown_type" if field == "type" and err["type"] == "literal_error" else "bad_event"
        raise EventError(code, f"{field}: {err['msg']}") from None


def parse_body(body: bytes) -> ConversionEvent:
    """A webhook body: one JSON object with the event's fields."""
    if len(body) > MAX_BODY_BYTES:
        raise EventError("too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError("malformed_body", f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventError("malformed_body", "body must be a JSON object")
    return parse_event(data)


@dataclass(frozen=True)
class CsvRow:
    """One data row of an import file: its 1-based line, and the event or why it is bad."""

    line: int
    event: ConversionEvent | None
    error: str | None = None


def read_csv(text: str) -> Iterator[CsvRow]:
    """The rows of an events CSV (header row first), each parsed or with its reason."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        yield CsvRow(1, None, f"header lacks column(s): {', '.join(missing)}")
        return
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            yield CsvRow(line, None, f"expected {len(header)} columns")
            continue
        values = {k: v for k, v in row.items() if k in CSV_COLUMNS + CSV_OPTIONAL}
        try:
            yield CsvRow(line, parse_event(values))
        except EventError as exc:
            yield CsvRow(line, None, str(exc))
