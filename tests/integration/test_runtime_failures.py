"""A template that fails on one group's real data is logged and passed: it never stalls the
bot, blocks other campaigns, or spins the loop; a broken template edit is never accepted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops, make_rig


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def ops_with_a_fragile_template(tmp_path: Path) -> Path:
    base = copy_ops(tmp_path)
    groups = base / "campaigns" / "groups.yaml"
    text = groups.read_text(encoding="utf-8")
    szu = text.index("  - id: sz-nanshan-szu")
    tags = text.index("    tags: [campus, residential]\n", szu)
    groups.write_text(text[:tags] + "    tags: []\n" + text[tags + 31 :], encoding="utf-8")
    # Fine for the sample context (a group with tags), broken for a group without any.
    (base / "templates" / "fragile.j2").write_text(
        "每 {{ 100 // (group.tags | length) }} 人一份礼品", encoding="utf-8"
    )
    (base / "campaigns" / "fragile.yaml").write_text(
        "id: a-fragile\nname: 易碎活动\nkind: daily\n"
        "targets: {groups: [sz-nanshan-kjy, sz-nanshan-szu]}\n"
        'schedule: {at: "10:00"}\ntemplate: fragile.j2\n',
        encoding="utf-8",
    )
    return base


async def test_a_render_failure_skips_that_group_and_the_bot_goes_on(tmp_path: Path) -> None:
    rig = make_rig(bot_settings(ops_with_a_fragile_template(tmp_path)), at("2026-12-01T09:55"))
    await rig.advance_to(at("2026-12-01T12:00"))
    records = rig.records()
    gifts = [r["to"] for r in records if "礼品" in r["text"]]
    assert gifts == ["room:sz-nanshan-kjy"]  # the group whose data broke it is skipped alone
    assert sum("午餐福利" in r["text"] for r in records) >= 12  # later campaigns go on
    assert rig.bot.scheduler.next_due() > at("2026-12-01T12:00")  # no busy loop on the past


async def test_a_template_that_does_not_render_is_rejected_on_reload(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    rig = make_rig(bot_settings(base), at("2026-12-01T11:00"))
    (base / "templates" / "meal.j2").write_text("{{ merchnts }}", encoding="utf-8")
    problems = rig.bot.reload()
    assert problems and "meal.j2" in problems[0] and "merchnts" in problems[0]
    await rig.advance_to(at("2026-12-01T12:00"))
    assert sum("午餐福利" in r["text"] for r in rig.records()) >= 12


async def test_stopping_the_live_loop_does_not_wait_for_its_next_wake_up(tmp_path: Path) -> None:
    import asyncio

    from scheduler.clock import RealClock

    settings = bot_settings(copy_ops(tmp_path))
    rig = make_rig(settings, at("2026-12-01T10:00"), clock=RealClock())  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(rig.bot.run_forever(stop))
    await asyncio.sleep(0.5)  # the loop is now asleep until its next due instant (up to 30 s)
    stop.set()
    await asyncio.wait_for(task, timeout=5)  # before the fix this took the full 30 s
    rig.bot.close()


async def test_a_stop_that_comes_during_a_pass_is_not_lost(tmp_path: Path) -> None:
    """``stop`` set while a pass runs: the wake-up used to be cleared after the pass, and the
    loop then slept until its next due instant (up to 30 s) before it saw the stop."""
    import asyncio

    from scheduler.clock import RealClock

    settings = bot_settings(copy_ops(tmp_path))
    rig = make_rig(settings, at("2026-12-01T10:00"), clock=RealClock())  # type: ignore[arg-type]
    stop = asyncio.Event()
    passes = 0
    run_due = rig.bot.run_due

    async def a_pass_during_which_stop_comes() -> None:
        nonlocal passes
        passes += 1
        stop.set()  # e.g. Ctrl-C while the pass awaits its database work
        await run_due()

    rig.bot.run_due = a_pass_during_which_stop_comes  # type: ignore[method-assign]
    rig.bot.next_due = lambda: None  # type: ignore[method-assign]  # nothing due: 30 s sleep
    await asyncio.wait_for(rig.bot.run_forever(stop), timeout=10)
    assert passes == 1
    rig.bot.close()
