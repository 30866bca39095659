"""`qunfu check`: an FAQ question written twice is a warning at the second, naming the first."""

from __future__ import annotations

from pathlib import Path

from bot.opsdata.loader import read_opsdata
from tests.support import copy_ops


def test_a_question_written_twice_is_a_warning_at_the_second(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    path = base / "campaigns" / "faq.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    first = next(i for i, t in enumerate(lines, 1) if t.strip().startswith("- question:"))
    question = lines[first - 1].split("question:", 1)[1].strip()
    text += f"  - question: {question}\n    answer: 重复条目。\n    keywords: []\n"
    path.write_text(text, encoding="utf-8")
    loaded = read_opsdata(base / "campaigns", base / "templates")
    (w,) = [p for p in loaded.problems if "same question" in p.message]
    assert w.is_warning and w.path.name == "faq.yaml"
    assert w.line == len(lines) + 1
    assert f"already in the FAQ at line {first}" in w.message
    assert not loaded.errors


def test_the_shipped_faq_has_no_duplicate(tmp_path: Path) -> None:
    base = copy_ops(tmp_path)
    loaded = read_opsdata(base / "campaigns", base / "templates")
    assert not [p for p in loaded.problems if "same question" in p.message]
