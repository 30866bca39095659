"""FAQ matching: confident answers, escalation below the threshold, and bad input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import FaqSettings
from bot.faq import FaqIndex, TermSet, is_question, normalise
from bot.opsdata.models import FaqEntry

ENTRIES = (
    FaqEntry(question="年费怎么减免？", answer="首年免年费。", keywords=["年费", "免年费", "减免"]),
    FaqEntry(
        question="账单日和还款日是哪天？",
        answer="还款日为账单日后第 20 天。",
        keywords=["账单日", "还款日"],
    ),
    FaqEntry(question="积分怎么兑换？", answer="在积分商城兑换。", keywords=["积分", "兑换"]),
)
INDEX = FaqIndex.build(ENTRIES, FaqSettings())


def test_a_question_in_other_words_finds_its_entry() -> None:
    match = INDEX.answer("@群福助手 请问年费可以减免吗?")
    assert match is not None and match.entry.question == "年费怎么减免？"
    assert match.bm25 == 1.0 and match.keywords == ("减免", "年费")


def test_jieba_and_bm25_match_without_any_keyword() -> None:
    entries = (FaqEntry(question="境外消费怎么退税", answer="见退税指南。"),)
    match = FaqIndex(entries).best("出国境外消费可以退税吗")
    assert match is not None and match.bm25 == 1.0 and match.keywords == ()


def test_a_question_the_faq_does_not_cover_is_below_the_threshold() -> None:
    assert INDEX.answer("你们银行几点下班") is None
    assert INDEX.answer("额度怎么提高？") is None


def test_the_threshold_is_configurable() -> None:
    strict = FaqIndex.build(ENTRIES, FaqSettings(min_score=1.5))
    assert strict.answer("年费") is None
    assert INDEX.answer("年费") is not None


def test_full_width_text_matches_its_ascii_form() -> None:
    assert is_question(normalise("年费怎么收？"), TermSet([]))
    assert normalise("ＡＢＣ？") == "abc?"


def test_casual_chatter_is_not_a_question() -> None:
    words = TermSet(FaqSettings().question_words)
    assert not is_question(normalise("今天天气真好"), words)
    assert is_question(normalise("积分能换啥呢"), words)


def test_an_empty_faq_answers_nothing() -> None:
    assert FaqIndex(()).answer("年费怎么减免") is None


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_matched_without_raising(text: str) -> None:
    match = INDEX.best(text)
    assert match is None or match.score >= 0


def test_huge_binary_looking_emoji_and_surrogate_text_is_handled() -> None:
    for text in ("年费" * 50_000, "\x00\x01\xff" * 1000, "😀" * 100, "\ud800年费\udfff", ""):
        INDEX.best(text)  # never raises
    assert len(normalise("年" * 100_000)) <= 300
