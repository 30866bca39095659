"""Logs show one time zone, Asia/Shanghai with its offset, whatever the machine's zone is."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger

from bot.logs import setup_logging, shanghai_text
from scheduler.clock import SHANGHAI


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A host whose local zone is neither UTC nor Shanghai, so a local time would show."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
    setup_logging("WARNING")


def test_record_times_and_times_in_messages_are_shanghai(
    machine_in_new_york: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "qunfu.log"
    setup_logging("INFO", json_file=log_file)
    fire_at = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # 11:30 in Shanghai
    logger.bind(fire_at=fire_at, due=fire_at.isoformat()).info(
        "occurrence at {} queued; next check {}", fire_at, fire_at + timedelta(minutes=5)
    )
    logger.complete()
    line = capsys.readouterr().err.strip()
    assert re.match(r"^\d{2}:\d{2}:\d{2} \+08:00 INFO ", line), line
    assert "2026-12-01 11:30:00+08:00" in line and "11:35:00+08:00" in line
    # Past the record's own wall-clock time, which may itself read 03:30.
    message = line.split(" INFO ", 1)[1]
    assert "+00:00" not in message and "03:30" not in message
    record = json.loads(log_file.read_text(encoding="utf-8").splitlines()[-1])["record"]
    assert record["time"]["repr"].endswith("+08:00")
    assert abs(record["time"]["timestamp"] - time.time()) < 3600  # the same instant, not shifted
    assert record["extra"] == {
        "fire_at": "2026-12-01T11:30:00+08:00",
        "due": "2026-12-01T11:30:00+08:00",
    }
    assert "03:30" not in record["message"]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_any_utc_iso_time_becomes_the_same_instant_in_shanghai(naive: datetime) -> None:
    utc = naive.replace(tzinfo=UTC)
    for written in (utc.isoformat(), str(utc), utc.isoformat(timespec="seconds")):
        shown = shanghai_text(f"sent at {written}.")
        assert shown.startswith("sent at ") and shown.endswith(".")
        moment = datetime.fromisoformat(shown[len("sent at ") : -1])
        assert moment == datetime.fromisoformat(written)
        assert moment.utcoffset() == timedelta(hours=8)
        assert moment.tzinfo is not None and moment.astimezone(SHANGHAI) == moment


def test_times_already_local_and_lookalikes_stay_as_written() -> None:
    text = "at 2026-12-01T11:30:00+08:00, code 2026-13-45T99:99:00+00:00, id 2026-12-01T11:30Zed"
    assert shanghai_text(text) == text


def test_a_simulation_s_log_lines_carry_its_virtual_time(
    machine_in_new_york: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Observed: `qunfu simulate` printed "20:25:17 +08:00 WARNING ticket SLA missed" for an
    # event at virtual 10:21 on 2026-12-01; the transcript beside it reads 10:21.
    from bot.logs import follow_clock
    from scheduler.clock import VirtualClock

    log_file = tmp_path / "qunfu.log"
    setup_logging("INFO", json_file=log_file)
    follow_clock(VirtualClock(datetime(2026, 12, 1, 10, 21, 5, tzinfo=SHANGHAI)))
    try:
        logger.warning("ticket SLA missed")
    finally:
        follow_clock(None)
    logger.warning("back on the machine's clock")
    logger.complete()
    virtual, real = capsys.readouterr().err.strip().splitlines()[-2:]
    assert virtual.startswith("10:21:05 +08:00 WARNING ticket SLA missed"), virtual
    records = [json.loads(x)["record"] for x in log_file.read_text("utf-8").splitlines()[-2:]]
    assert records[0]["time"]["repr"].startswith("2026-12-01 10:21:05")
    assert abs(records[1]["time"]["timestamp"] - time.time()) < 3600
    assert "back on the machine's clock" in real
