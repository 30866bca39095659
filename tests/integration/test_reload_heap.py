"""A reload keeps full garbage collections off the event loop (issue 8: reloads never stall).

The new version is built with automatic collection paused, then everything alive is frozen
(bot/opsdata/heap.py). That is only safe if a swapped-out version is freed by reference
counting alone, without the collector: tested here with the collector off.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.opsdata import heap
from scheduler.clock import SHANGHAI
from tests.support import BotRig, bot_settings, copy_ops, make_rig

START = datetime(2026, 12, 1, 11, 0, tzinfo=SHANGHAI)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[BotRig]:
    base = copy_ops(tmp_path)
    settings = bot_settings(base, database={"url": f"sqlite:///{tmp_path}/q.db"})
    r = make_rig(settings, START)
    yield r
    r.bot.close()


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """Leave the collector as it was: on, nothing frozen (the rest of the session needs it)."""
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()


def _edit(r: BotRig) -> None:
    lunch = r.bot.settings.campaigns_dir / "meals.yaml"
    lunch.write_text(lunch.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")


async def test_a_reload_builds_with_collection_paused_then_freezes_what_is_live(
    rig: BotRig,
) -> None:
    seen: list[bool] = []
    reload = rig.bot.source.reload

    def watched() -> object:
        seen.append(gc.isenabled())
        return reload()

    rig.bot.source.reload = watched  # type: ignore[method-assign]
    gc.unfreeze()
    _edit(rig)
    old = rig.bot.ops
    assert await rig.bot.reload_async() == []
    assert rig.bot.ops is not old
    assert seen == [False]  # no full pass walking both versions while the new one is built
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # the live version is not walked by later full passes


async def test_a_rejected_edit_turns_collection_back_on(rig: BotRig) -> None:
    meals = rig.bot.settings.campaigns_dir / "meals.yaml"
    meals.write_text("campaigns: [", encoding="utf-8")
    assert await rig.bot.reload_async() != []
    assert gc.isenabled()


async def test_a_swapped_out_version_is_freed_without_the_collector(rig: BotRig) -> None:
    await rig.bot.reload_async()  # what the first reload leaves behind is not the question
    old_ops = weakref.ref(rig.bot.ops)
    old_planner = weakref.ref(rig.bot.planner())
    old_group = weakref.ref(next(iter(rig.bot.ops.groups.values())))
    gc.collect()
    gc.disable()
    _edit(rig)
    assert await rig.bot.reload_async() == []
    gc.disable()  # the reload turned it back on
    assert old_ops() is None and old_planner() is None and old_group() is None


def test_pauses_nest_and_keep_a_collector_that_was_off_off() -> None:
    gc.enable()
    with heap.collection_paused():
        with heap.collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with heap.collection_paused():
        pass
    assert not gc.isenabled()
