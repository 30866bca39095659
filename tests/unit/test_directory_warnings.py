"""`qunfu check` warns when a group's tickets would reach nobody (no manager, no ops contacts)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.opsdata import load_opsdata
from bot.opsdata.lint import warnings
from scheduler.clock import SHANGHAI
from tests.support import bot_settings, copy_ops

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


def _without_manager(tmp_path: Path, group: str) -> Path:
    base = copy_ops(tmp_path)
    path = base / "campaigns" / "groups.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- id: {group}")
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("manager:"))
    del lines[end]
    path.write_text("".join(lines), encoding="utf-8")
    return base


def _escalation_warnings(base: Path, **settings: object) -> list[str]:
    ops = load_opsdata(base / "campaigns", base / "templates")
    found = warnings(ops, bot_settings(base, **settings), NOW)
    return [
        f"{p.path.name}:{p.line}:{p.col}: {p.message}"
        for p in found
        if "reaches nobody" in p.message
    ]


def test_a_group_without_a_manager_and_no_ops_contacts_is_a_warning_at_its_entry(
    tmp_path: Path,
) -> None:
    base = _without_manager(tmp_path, "sz-baoan-xx")
    (w,) = _escalation_warnings(base, entry={"ops_contacts": []})
    text = (base / "campaigns" / "groups.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.strip() == "- id: sz-baoan-xx")
    assert w.startswith(f"groups.yaml:{line}:"), w
    assert "1 group(s) have no `manager:` the directory knows (sz-baoan-xx)" in w
    assert "entry.ops_contacts" in w


def test_ops_contacts_take_the_tickets_of_a_group_without_a_manager(tmp_path: Path) -> None:
    base = _without_manager(tmp_path, "sz-baoan-xx")
    assert _escalation_warnings(base, entry={"ops_contacts": ["wxid_ops"]}) == []


def test_every_group_with_a_manager_is_fine_without_ops_contacts(tmp_path: Path) -> None:
    assert _escalation_warnings(copy_ops(tmp_path), entry={"ops_contacts": []}) == []
