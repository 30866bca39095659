"""Which group messages enter a lottery: the keyword, also wrapped in a polite prefix or
closing marks (a QA review saw "抽奖！" and "我要抽奖" ignored), and nothing more."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.handlers.lottery import keyword_in

KEYWORDS = {"抽奖": [], "福气": []}


@pytest.mark.parametrize(
    "text", ["抽奖", "抽奖！", "我要抽奖", "我要抽奖！！", "参加抽奖~", "我也要抽奖。", "福气!"]
)
def test_the_keyword_with_a_prefix_or_closing_marks_enters(text: str) -> None:
    assert keyword_in(text, KEYWORDS) in KEYWORDS


@pytest.mark.parametrize(
    "text", ["抽奖什么时候开?", "抽奖吗", "不抽奖", "我要抽奖券", "怎么抽奖", "", "！"]
)
def test_a_question_or_other_words_around_it_do_not(text: str) -> None:
    assert keyword_in(text, KEYWORDS) is None


@given(st.text(max_size=12))
def test_only_ever_answers_a_live_keyword_that_the_text_contains(text: str) -> None:
    found = keyword_in(text, KEYWORDS)
    assert found is None or (found in KEYWORDS and found in text)
