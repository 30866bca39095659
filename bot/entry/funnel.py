"""The entry funnel per channel.

Stages: visit → location given → group chosen → joined → still in the group after 7 days.

Visits are counted by the day they happened (a cohort): a report for 1–7 December counts the
visits of those days and how far each has got by ``now``, whenever the later stages happened.
A join counts as retained when the member has stayed ``retention`` (7 days) after joining; a
join less than 7 days old is not yet *due* and is left out of the retention rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from rich.cells import cell_len

from db.entry_repositories import EntryRepo, VisitFacts
from scheduler.clock import SHANGHAI, Clock

STAGES = ("visits", "located", "chosen", "joined", "retained")
STAGE_ZH = {
    "visits": "访问",
    "located": "给出位置",
    "chosen": "选择群",
    "joined": "入群",
    "retained": "7天后仍在群",
}


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


@dataclass(frozen=True)
class ChannelFunnel:
    """Counts per stage for one channel; ``retention_due`` joins are at least 7 days old."""

    channel: str
    name: str
    visits: int = 0
    located: int = 0
    chosen: int = 0
    joined: int = 0
    retention_due: int = 0
    retained: int = 0

    def step_conversion(self) -> dict[str, float | None]:
        """Each stage over the one before it (retained over the joins that are due)."""
        return {
            "located": _rate(self.located, self.visits),
            "chosen": _rate(self.chosen, self.located),
            "joined": _rate(self.joined, self.chosen),
            "retained": _rate(self.retained, self.retention_due),
        }

    def overall(self) -> float | None:
        """Joins over visits."""
        return _rate(self.joined, self.visits)

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "name": self.name,
            "visits": self.visits,
            "located": self.located,
            "chosen": self.chosen,
            "joined": self.joined,
            "retention_due": self.retention_due,
            "retained": self.retained,
            "conversion": self.step_conversion(),
            "overall": self.overall(),
        }


def tally(
    facts: Iterable[VisitFacts],
    now: datetime,
    channel_names: Mapping[str, str],
    retention: timedelta = timedelta(days=7),
) -> list[ChannelFunnel]:
    """Funnels per channel: every configured channel (in its order), then any other seen."""
    counts: dict[str, dict[str, int]] = {
        c: dict.fromkeys(("visits", "located", "chosen", "joined", "retention_due", "retained"), 0)
        for c in channel_names
    }
    for f in facts:
        c = counts.setdefault(
            f.channel,
            dict.fromkeys(
                ("visits", "located", "chosen", "joined", "retention_due", "retained"), 0
            ),
        )
        c["visits"] += 1
        c["located"] += f.located_at is not None
        c["chosen"] += f.chosen_at is not None
        if f.joined_at is None:
            continue
        c["joined"] += 1
        due = f.joined_at + retention
        if due <= now:
            c["retention_due"] += 1
            c["retained"] += f.left_at is None or f.left_at >= due
    return [ChannelFunnel(cid, channel_names.get(cid, cid), **n) for cid, n in counts.items()]


def total(rows: Iterable[ChannelFunnel]) -> ChannelFunnel:
    """All channels together."""
    rows = list(rows)
    return ChannelFunnel(
        "*",
        "合计",
        *(
            sum(getattr(r, k) for r in rows)
            for k in ("visits", "located", "chosen", "joined", "retention_due", "retained")
        ),
    )


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """Asia/Shanghai instants from the start of ``first`` to the end of ``last`` (exclusive)."""
    start = datetime.combine(first, time.min, SHANGHAI)
    return start, datetime.combine(last + timedelta(days=1), time.min, SHANGHAI)


class EntryFunnel:
    """Reads the funnel for a range of visit days."""

    def __init__(self, visits: EntryRepo, clock: Clock, retention: timedelta) -> None:
        self._visits = visits
        self._clock = clock
        self._retention = retention

    def report(
        self, first: date, last: date, channel_names: Mapping[str, str]
    ) -> list[ChannelFunnel]:
        start, end = day_bounds(first, last)
        return tally(
            self._visits.facts(start, end), self._clock.now(), channel_names, self._retention
        )


def format_table(rows: list[ChannelFunnel]) -> str:
    """A plain-text table for the terminal (counts, then step conversion in %)."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.1f}%"

    def pad(text: str, width: int, *, right: bool = False) -> str:
        # Chinese characters take two terminal cells: str.ljust would misalign the columns.
        fill = " " * max(0, width - cell_len(text))
        return fill + text if right else text + fill

    everything = [*rows, total(rows)]
    labels = [f"{r.name}({r.channel})" for r in everything]
    first = max(14, *(cell_len(label) + 2 for label in labels))
    widths = (6, 6, 6, 6, 9)
    head = ["访问", "位置", "选群", "入群", "7天留存"]
    lines = [
        pad("渠道", first)
        + "".join(pad(h, w, right=True) for h, w in zip(head, widths, strict=True))
        + "   转化(位置/选群/入群/留存)"
    ]
    for label, r in zip(labels, everything, strict=True):
        conv = r.step_conversion()
        cells = [r.visits, r.located, r.chosen, r.joined, f"{r.retained}/{r.retention_due}"]
        lines.append(
            pad(label, first)
            + "".join(pad(str(c), w, right=True) for c, w in zip(cells, widths, strict=True))
            + "   "
            + " / ".join(pct(conv[k]) for k in ("located", "chosen", "joined", "retained"))
        )
    return "\n".join(lines)
