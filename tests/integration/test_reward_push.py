"""Reward pushes against a real HTTP server on 127.0.0.1: retries with the outbox's backoff,
permanent refusals left for ops, signatures the partner can verify, and the time-loop shape."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.config import OutboxSettings
from bot.opsdata.models import ReferralProgramme
from bot.referrals import ConversionEvent, ReferralLedger
from bot.referrals.fulfilment import RewardFulfilment
from bot.referrals.signatures import HEADER, SignatureError, verify
from db.session import make_engine, upgrade
from scheduler.clock import SHANGHAI, VirtualClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
KEY = b"push-secret-for-tests"
RETRY = OutboxSettings(
    max_attempts=4, backoff=timedelta(seconds=5), max_backoff=timedelta(seconds=60)
)
PROGRAMME = ReferralProgramme.model_validate(
    {
        "tiers": [{"count": 1, "reward": "咖啡券"}],
        "window_days": 90,
        "qualifying_event": "application_approved",
    }
)


class Partner:
    """A partner endpoint answering the scripted statuses in turn (then 200), keeping requests;
    ``delay_s`` holds each answer back (a slow partner: concurrent pushes overlap)."""

    def __init__(self, statuses: list[int], delay_s: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(delay_s)
                partner.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = partner.statuses.pop(0) if partner.statuses else 200
                reply = b'{"error": "unknown referrer"}' if status == 400 else b"{}"
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rewards"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Partner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ReferralLedger]:
    url = f"sqlite:///{tmp_path / 'push.db'}"
    upgrade(url)
    engine = make_engine(url)
    ledger = ReferralLedger(engine, lambda: PROGRAMME, VirtualClock(T0))
    ledger.record(
        ConversionEvent.model_validate(
            {
                "event_id": "ev-1",
                "type": "application_approved",
                "referral_code": "AAAAAAAA-BBBBBBBB",
                "applicant": "friend-1",
                "occurred_at": T0 - timedelta(hours=1),
            }
        ),
        "m1",
    )
    yield ledger
    engine.dispose()


def fulfilment(ledger: ReferralLedger, url: str | None) -> RewardFulfilment:
    return RewardFulfilment(ledger.engine, ledger.clock, RETRY, push_url=url, push_key=KEY)


def only_reward(ledger: ReferralLedger) -> int:
    (reward,) = ledger.queries.rewards()
    return reward.id


def test_503s_are_retried_with_backoff_then_sent_once(ledger: ReferralLedger) -> None:
    clock = ledger.clock
    assert isinstance(clock, VirtualClock)
    rid = only_reward(ledger)
    with Partner([503, 503]) as partner:
        push = fulfilment(ledger, partner.url)
        assert push.next_due() == T0  # never tried: due now
        assert push.push_due().failed == [rid]
        # Not due again until the backoff has passed: nothing is posted before then.
        assert push.next_due() == T0 + timedelta(seconds=5)
        clock.set(T0 + timedelta(seconds=4))
        assert push.push_due().failed == []
        clock.set(T0 + timedelta(seconds=5))
        assert push.push_due().failed == [rid]
        assert push.next_due() == T0 + timedelta(seconds=15)  # 5 s, then doubled
        clock.set(T0 + timedelta(seconds=15))
        assert push.push_due().sent == [rid]
        assert push.next_due() is None
        assert push.push_due().sent == []  # sent once: a later round posts nothing
    assert len(partner.requests) == 3
    (reward,) = ledger.queries.rewards()
    assert reward.status == "sent"
    steps = [(h["from_status"], h["to_status"], h["note"]) for h in ledger.queries.history(rid)]
    assert [s[:2] for s in steps] == [
        (None, "pending"),
        ("pending", "pending"),
        ("pending", "pending"),
        ("pending", "sent"),
    ]
    assert "attempt 1 failed: HTTP 503" in steps[1][2] and "retry at" in steps[1][2]
    assert "attempt 2 failed: HTTP 503" in steps[2][2]
    assert "attempt 3" in steps[3][2]
    # Every attempt carries the same idempotency key, so the partner can drop a repeat.
    assert {h["idempotency-key"] for h, _ in partner.requests} == {f"qunfu-reward-{rid}"}


def test_a_400_is_recorded_with_its_reason_and_not_retried(ledger: ReferralLedger) -> None:
    clock = ledger.clock
    assert isinstance(clock, VirtualClock)
    rid = only_reward(ledger)
    with Partner([400]) as partner:
        push = fulfilment(ledger, partner.url)
        result = push.push_due()
        assert (result.sent, result.failed, result.refused) == ([], [], [rid])
        assert push.next_due() is None
        clock.set(T0 + timedelta(days=1))
        assert push.push_due() == type(result)([], [], [])
    assert len(partner.requests) == 1
    (reward,) = ledger.queries.rewards()
    assert reward.status == "pending"  # left for ops: exported or rejected, never "sent"
    assert "HTTP 400" in reward.last_error and "unknown referrer" in reward.last_error
    last = ledger.queries.history(rid)[-1]
    assert last["to_status"] == "pending" and "permanent" in last["note"]


def test_the_partner_verifies_the_signature_with_the_secret(ledger: ReferralLedger) -> None:
    with Partner([]) as partner:
        fulfilment(ledger, partner.url).push_due()
    ((headers, body),) = partner.requests
    verify(headers[HEADER.lower()], body, [KEY], T0, timedelta(seconds=300))
    with pytest.raises(SignatureError) as refused:
        verify(headers[HEADER.lower()], body, [b"another secret"], T0, timedelta(seconds=300))
    assert refused.value.code == "bad_signature"
    with pytest.raises(SignatureError):
        verify(headers[HEADER.lower()], body + b" ", [KEY], T0, timedelta(seconds=300))


def test_a_refused_connection_is_retried_until_attempts_run_out(ledger: ReferralLedger) -> None:
    clock = ledger.clock
    assert isinstance(clock, VirtualClock)
    with socket.socket() as s:  # a port nobody listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    push = fulfilment(ledger, f"http://127.0.0.1:{port}/rewards")
    rid = only_reward(ledger)
    for _ in range(RETRY.max_attempts):
        due = push.next_due()
        assert due is not None
        clock.set(due)
        assert push.push_due().failed == [rid]
    assert push.next_due() is None  # attempts used up: waits for export
    (reward,) = ledger.queries.rewards()
    assert reward.status == "pending" and reward.attempts == RETRY.max_attempts
    notes = [h["note"] for h in ledger.queries.history(rid)[1:]]
    assert len(notes) == RETRY.max_attempts
    assert all("ConnectError" in n for n in notes) and "no attempts left" in notes[-1]


def test_the_time_loop_shape_pushes_off_the_event_loop(ledger: ReferralLedger) -> None:
    rid = only_reward(ledger)
    with Partner([]) as partner:
        push = fulfilment(ledger, partner.url)
        assert asyncio.run(push.run_due()).sent == [rid]
    assert fulfilment(ledger, None).next_due() is None  # no push_url: pushing is off
    assert asyncio.run(fulfilment(ledger, None).run_due()).sent == []


def test_a_pass_past_its_time_budget_starts_no_more_pushes_and_the_rest_stay_due(
    ledger: ReferralLedger,
) -> None:
    # The live loop delivers the outbox after the push pass; a slow partner must not hold it
    # back, so a pass stops starting pushes once its budget is spent.
    with Partner([]) as partner:
        push = fulfilment(ledger, partner.url)
        spent = push.push_due(budget_s=-1.0)  # already over budget before the first push
        assert (spent.sent, spent.failed, partner.requests) == ([], [], [])
        assert push.next_due() == T0  # still due for the next pass
        assert push.push_due().sent == [only_reward(ledger)]
