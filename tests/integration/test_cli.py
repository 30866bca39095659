"""The `qunfu` commands ops staff use: check, preview, route, db upgrade."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from geopy.distance import geodesic
from typer.testing import CliRunner

from bot.cli import app
from bot.routing import to_wgs84
from tests.support import ROOT, copy_ops

runner = CliRunner()
CONFIG = str(ROOT / "config.yaml")


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args))


def test_check_passes_on_the_shipped_config() -> None:
    result = invoke("check", "--config", CONFIG)
    assert result.exit_code == 0, result.output


def test_check_reports_each_problem_with_its_position(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    shutil.copy(ROOT / "config.yaml", base / "config.yaml")
    (base / "campaigns" / "broken.yaml").write_text(
        'id: broken\nname: 坏活动\nkind: daily\nschedule:\n  at: "25:61"\n'
        "template: daily.j2\nshedule_note: x\n",
        encoding="utf-8",
    )
    result = invoke("check", "--config", str(base / "config.yaml"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(
        line.endswith("broken.yaml:5:7: impossible time '25:61': hours go 00-23 and minutes 00-59")
        for line in lines
    ), lines
    assert any("broken.yaml:7:1: unknown key 'shedule_note'" in line for line in lines), lines


def test_preview_json_lines_follow_the_contract() -> None:
    result = invoke(
        "preview",
        "--config",
        CONFIG,
        "--group",
        "sz-nanshan-kjy",
        "--from",
        "2026-12-02",
        "--days",
        "1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {tuple(sorted(r)) for r in rows} == {("account", "at", "campaign", "group", "text")}
    assert {r["group"] for r in rows} == {"sz-nanshan-kjy"}
    assert {r["account"] for r in rows} == {"bot"}  # the sample runs one account, named bot.id
    by_campaign = {r["campaign"]: r for r in rows}
    # Wednesday 2 December 2026: meals, check-in and the Wednesday cinema perk.
    # 13th of the 15 groups in a 15-minute spread, as in the full preview (--group filters only).
    assert by_campaign["cinema-wednesday"]["at"] == "2026-12-02T10:12:00+08:00"
    assert by_campaign["lunch-deals"]["at"] == "2026-12-02T11:46:00+08:00"
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)


def test_preview_on_a_saturday_has_no_weekday_lunch() -> None:
    result = invoke("preview", "--config", CONFIG, "--from", "2026-12-05", "--json")
    assert result.exit_code == 0
    campaigns = {json.loads(line)["campaign"] for line in result.stdout.splitlines()}
    assert "lunch-deals" not in campaigns and "dinner-deals" in campaigns


def test_preview_rejects_a_bad_date() -> None:
    result = invoke("preview", "--config", CONFIG, "--from", "2026-13-01")
    assert result.exit_code == 1
    assert "YYYY-MM-DD" in result.output


def test_route_lists_groups_with_room_nearest_first() -> None:
    result = invoke(
        "route",
        "--config",
        CONFIG,
        "--lat",
        "22.5300",
        "--lon",
        "113.9440",
        "--limit",
        "3",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["distance_m"] for r in rows] == sorted(r["distance_m"] for r in rows)
    assert "sz-nanshan-kjy-2" not in {r["group"] for r in rows}  # full: 500/500
    assert all(r["members"] < r["capacity"] for r in rows)
    first = rows[0]
    assert set(first) == {"group", "name", "distance_m", "members", "capacity"}


def test_route_converts_bd09_before_measuring() -> None:
    gcj = json.loads(
        invoke(
            "route", "--config", CONFIG, "--lat", "22.5405", "--lon", "113.9345", "--json"
        ).stdout
    )
    bd = json.loads(
        invoke(
            "route",
            "--config",
            CONFIG,
            "--lat",
            "22.546536",
            "--lon",
            "113.941041",
            "--crs",
            "bd09",
            "--json",
        ).stdout
    )
    assert gcj[0]["group"] == bd[0]["group"] == "sz-nanshan-kjy"
    assert bd[0]["distance_m"] < 50
    # The same numbers read as WGS-84 are hundreds of metres away.
    wgs = to_wgs84(22.5405, 113.9345, "wgs84")
    assert geodesic(wgs, to_wgs84(22.5405, 113.9345, "gcj02")).m > 300


def test_route_rejects_a_malformed_location() -> None:
    result = invoke("route", "--config", CONFIG, "--lat", "95", "--lon", "113")
    assert result.exit_code == 1
    assert "lat" in result.output
    result = invoke("route", "--config", CONFIG, "--lat", "22", "--lon", "113", "--crs", "xyz")
    assert result.exit_code == 1


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///var/x.db}\n",
        encoding="utf-8",
    )
    result = invoke("db", "upgrade", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "x.db").exists()


def test_outbox_commands_show_the_audit_log_and_requeue_an_uncertain_send(
    tmp_path: Path,
) -> None:
    import asyncio
    from datetime import datetime

    from bot.config import OutboxSettings, QuietHours
    from bot.events import Say
    from bot.gateways.base import DeliveryUnknown
    from bot.outbox import Outbox, OutboxItem
    from db.session import make_engine, upgrade
    from scheduler.clock import SHANGHAI, VirtualClock

    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {ROOT / 'campaigns'}\ntemplates_dir: {ROOT / 'templates'}\n"
        "database: {url: sqlite:///q.db}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'q.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = VirtualClock(datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI))
    outbox = Outbox(engine, OutboxSettings(jitter=0), QuietHours(), clock)
    outbox.enqueue(
        [
            OutboxItem("k-ok", Say("room:sz-nanshan-kjy", "你好"), clock.now(), "c1"),
            OutboxItem("k-lost", Say("room:sz-nanshan-kjy", "再见"), clock.now()),
        ]
    )

    class CutOff:
        bot_id = "bot"
        calls = 0

        async def perform(self, action: object) -> None:
            self.calls += 1
            if self.calls == 2:
                raise DeliveryUnknown("connection lost mid-call")

    async def deliver() -> None:
        gateway = CutOff()
        for _ in range(3):
            await outbox.deliver_due(gateway)  # type: ignore[arg-type]
            clock.set(clock.now().replace(minute=clock.now().minute + 1))

    asyncio.run(deliver())
    engine.dispose()

    audit = invoke("outbox", "audit", "--config", str(config))
    assert audit.exit_code == 0, audit.output
    rows = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [(r["key"], r["to"], r["text"], r["campaign"]) for r in rows] == [
        ("k-ok", "room:sz-nanshan-kjy", "你好", "c1")
    ]
    listed = invoke("outbox", "list", "--config", str(config), "--json")
    assert [json.loads(line)["key"] for line in listed.stdout.splitlines()] == ["k-lost"]
    assert invoke("outbox", "requeue", "k-lost", "--config", str(config)).exit_code == 0
    assert invoke("outbox", "requeue", "k-lost", "--config", str(config)).exit_code == 1
    status = invoke("outbox", "status", "--config", str(config)).stdout
    assert "pending    1" in status and "sent       1" in status
    # Nothing uncertain left: said, not an empty screen.
    empty = invoke("outbox", "list", "--config", str(config))
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no uncertain sends" in empty.output
