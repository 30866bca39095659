"""The referral ledger on SQLite: tiers once (middle ones too), fraud rules, review decisions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.opsdata.models import ReferralProgramme
from bot.referrals import Burst, ConversionEvent, LedgerError, ReferralLedger
from db.referral_repositories import REWARDS
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, VirtualClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
PROGRAMME = ReferralProgramme.model_validate(
    {
        "tiers": [
            {"count": 1, "reward": "咖啡券"},
            {"count": 3, "reward": "100 元还款金"},
            {"count": 5, "reward": "300 元还款金"},
        ],
        "window_days": 90,
        "qualifying_event": "application_approved",
        "caps": {"per_referrer": 8, "per_referrer_per_month": 6},
    }
)


def event(
    n: int,
    applicant: str | None = None,
    at: datetime | None = None,
    *,
    type_: str = "application_approved",
    referrer_applicant: str | None = None,
    event_id: str | None = None,
) -> ConversionEvent:
    return ConversionEvent.model_validate(
        {
            "event_id": event_id or f"ev-{n}",
            "type": type_,
            "referral_code": "AAAAAAAA-BBBBBBBB",
            "applicant": applicant or f"friend-{n}",
            "occurred_at": at or T0 + timedelta(days=n),
            "referrer_applicant": referrer_applicant,
        }
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ReferralLedger]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield ReferralLedger(
        engine, lambda: PROGRAMME, VirtualClock(T0), Burst(4, timedelta(minutes=60))
    )
    engine.dispose()


def tiers(ledger: ReferralLedger, referrer: str = "m1") -> dict[int, str]:
    return {r.tier: r.status for r in ledger.queries.rewards(referrer_id=referrer)}


def test_every_tier_reached_is_granted_once_middle_tiers_included(ledger: ReferralLedger) -> None:
    granted = [g.tier for n in range(1, 6) for g in ledger.record(event(n), "m1").granted]
    assert granted == [1, 3, 5]
    assert tiers(ledger) == {1: "pending", 3: "pending", 5: "pending"}
    assert ledger.progress("m1").counted == 5 and ledger.progress("m1").next_tier is None


def test_a_replay_answers_duplicate_and_changes_nothing(ledger: ReferralLedger) -> None:
    first = ledger.record(event(1), "m1")
    again = ledger.record(event(1), "m1")
    assert first.granted and not first.duplicate
    assert again.duplicate and not again.granted
    assert ledger.progress("m1").counted == 1


def test_the_database_refuses_a_second_reward_for_a_tier(ledger: ReferralLedger) -> None:
    ledger.record(event(1), "m1")
    row = ledger.queries.rewards(referrer_id="m1")[0]
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        values = {c.name: getattr(row, c.name) for c in REWARDS.c if c.name != "id"}
        conn.execute(sa.insert(REWARDS).values(**values))


def test_an_applicant_counts_once_across_referrers_first_event_wins(
    ledger: ReferralLedger,
) -> None:
    ledger.record(event(2, "alice"), "m1")
    late_but_earlier = ledger.record(event(1, "alice", event_id="ev-x"), "m2")
    assert late_but_earlier.outcome == "counted"
    assert tiers(ledger, "m2") == {1: "pending"}
    assert tiers(ledger, "m1") == {}  # unpaid, undecided: withdrawn by the recount
    assert ledger.record(event(3, "alice"), "m3").outcome == "applicant_counted"


def test_self_referral_never_counts(ledger: ReferralLedger) -> None:
    receipt = ledger.record(event(1, "me", referrer_applicant="me"), "m1")
    assert receipt.outcome == "self_referral" and not receipt.granted


def test_an_event_of_another_type_is_recorded_but_does_not_count(ledger: ReferralLedger) -> None:
    receipt = ledger.record(event(1, type_="application_submitted"), "m1")
    assert receipt.outcome == "not_qualifying" and tiers(ledger) == {}


def test_caps_per_month_and_per_window(ledger: ReferralLedger) -> None:
    outcomes = [
        ledger.record(event(n, at=T0 + timedelta(hours=2 * n)), "m1").outcome for n in range(8)
    ]
    assert outcomes == ["counted"] * 6 + ["over_monthly_cap"] * 2
    outcomes = [
        ledger.record(event(n, at=T0 + timedelta(days=31 + n)), "m1").outcome for n in range(10, 14)
    ]
    assert outcomes == ["counted", "counted", "over_cap", "over_cap"]


def test_friends_after_the_window_do_not_count(ledger: ReferralLedger) -> None:
    ledger.record(event(1), "m1")
    assert ledger.record(event(2, at=T0 + timedelta(days=92)), "m1").outcome == "outside_window"


def test_a_burst_is_held_for_review_then_approved_or_rejected(ledger: ReferralLedger) -> None:
    for n in range(5):
        ledger.record(event(n, at=T0 + timedelta(minutes=10 * n)), "m1")
    assert tiers(ledger) == {1: "held", 3: "held", 5: "held"}
    held = ledger.held()
    assert all("burst" in r.held_reason for r in held)
    approved = ledger.approve(held[0].id, "ops-wang")
    assert approved.status == "pending" and approved.decided_by == "ops-wang"
    rejected = ledger.reject(held[1].id, "ops-wang", "同一设备批量申请")
    assert rejected.status == "rejected" and rejected.decision_note == "同一设备批量申请"
    with pytest.raises(LedgerError):
        ledger.approve(held[1].id, "ops-wang")  # rejected stays rejected
    with pytest.raises(LedgerError):
        ledger.reject(held[2].id, "ops-wang", " ")  # a reason is required
    history = ledger.queries.history(held[1].id)
    # Tier 3 was pending when reached; the fourth friend within the hour made it a burst.
    assert [(h["from_status"], h["to_status"], h["by"]) for h in history] == [
        (None, "pending", "system"),
        ("pending", "held", "system"),
        ("held", "rejected", "ops-wang"),
    ]


def test_progress_and_leaderboard(ledger: ReferralLedger) -> None:
    for n in range(1, 3):
        ledger.record(event(n), "m1")
    ledger.record(event(9), "m2")
    progress = ledger.progress("m1")
    assert (progress.counted, progress.remaining) == (2, 1)
    assert progress.next_tier is not None and progress.next_tier.reward == "100 元还款金"
    assert ledger.leaderboard(10) == [("m1", 2), ("m2", 1)]


def test_the_grant_hook_hears_each_new_tier_once(ledger: ReferralLedger) -> None:
    heard: list[int] = []
    ledger.on_granted.append(lambda grants: heard.extend(g.tier for g in grants))
    for n in (1, 2, 3, 3, 1):
        ledger.record(event(n), "m1")
    assert heard == [1, 3]
