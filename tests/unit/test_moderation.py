"""Moderation: ads, personal data and flooding in group messages, and strikes.

The labelled corpus (tests/data/moderation_corpus.yaml) holds the floors; the unit tests
below pin each evasion, each context rule, the exemptions and bad input one at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.moderation import CLASSES, evaluate, load_corpus
from bot.moderation import (
    InMemoryStrikes,
    Lexicon,
    LexiconError,
    ModerationDetector,
    ModerationSettings,
    PastMessage,
    RecentMessages,
    StrikeBook,
    StrikePolicy,
    Verdict,
    default_lexicon,
)
from bot.moderation.lexicon import DEFAULT_PATH

NOW = datetime.fromisoformat("2026-12-01T12:00:00+08:00")


@pytest.fixture(scope="module")
def detector() -> ModerationDetector:
    return ModerationDetector()


def rule_of(detector: ModerationDetector, text: str, **kwargs: object) -> str:
    return detector.check(text, **kwargs).rule  # type: ignore[arg-type]


# --- the corpus and its floors -------------------------------------------------------------


def test_the_corpus_is_large_and_covers_every_class() -> None:
    samples = load_corpus()
    assert len(samples) >= 120
    labels = {s.expect for s in samples}
    assert labels == set(CLASSES)
    texts = [s.text for s in samples if s.text]
    assert len(set(texts)) >= 0.9 * len(texts), "corpus entries should not be copies"


def test_the_corpus_meets_the_floors(detector: ModerationDetector) -> None:
    report = evaluate(detector, load_corpus())
    wrong = "\n".join(
        f"line {s.line}: expected {s.expect}, got {v.rule}: {s.text[:30]}" for s, v in report.wrong
    )
    # Floors: nine ads in ten caught, at most one ordinary message in fifty flagged, and every
    # card, ID and phone number found (the detectors are checksum-exact, so anything less is
    # a bug, not a trade-off).
    assert report.recall("ad") >= 0.9, wrong
    assert report.flagged_share("ok") <= 0.02, wrong
    assert report.recall("personal_data") == 1.0, wrong
    assert report.recall("flood") == 1.0, wrong


# --- evasions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "套现",
        "套 现",  # space
        "套　现",  # ideographic space
        "套-现",  # symbol
        "套💰现",  # emoji
        "套\u200b现",  # zero-width space
        "套☆现☆秒☆到",
        "ＴＡＯ现",  # full-width letters
        "taoxian",  # pinyin
        "TAO XIAN",
        "tao现",  # pinyin and Han mixed
        "ｔａｏｘｉａｎ",
    ],
)
def test_evasions_of_a_strong_term_are_still_the_term(
    detector: ModerationDetector, text: str
) -> None:
    assert rule_of(detector, f"信用卡{text}") == "ad.cashout"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("淘现秒到", "ad.cashout"),  # homophone + offer cue
        ("套現，私聊", "ad.cashout"),  # traditional character
        ("带还信用卡，专业团队", "ad.repay"),
        ("贷还空卡，全国可做", "ad.repay"),
        ("DAI还 秒到", "ad.repay"),
        ("yangka 私聊", "ad.card_farming"),
        ("🈶需要🉑以私聊，代还", "ad.repay"),  # enclosed ideographs fold to 有 and 可
    ],
)
def test_homophones_and_pinyin(detector: ModerationDetector, text: str, rule: str) -> None:
    assert rule_of(detector, text) == rule


def test_a_homophone_alone_needs_offer_phrasing(detector: ModerationDetector) -> None:
    # Han homophones are real words too (待还, 淘鲜): without an offer they are not ads.
    assert rule_of(detector, "淘现") == "ok"
    assert rule_of(detector, "淘现秒到") == "ad.cashout"


def test_pinyin_inside_a_longer_latin_word_is_not_a_hit(detector: ModerationDetector) -> None:
    assert rule_of(detector, "yangkai 你好，周末一起吃饭") == "ok"
    assert rule_of(detector, "yangka 你好") == "ad.card_farming"


@pytest.mark.parametrize(
    "text",
    [
        "这个套餐现在还有吗",  # 套…现 across words, not adjacent
        "这套现在多少钱一平",  # 套现 adjacent, across words
        "一套现房要多少钱",
        "楼下淘鲜达的菜挺新鲜的",  # taoxian by sound
        "明天去桃仙机场",
        "这个月待还款3000",  # daihai by sound
        "我带还是不带伞",
    ],
)
def test_words_that_contain_or_sound_like_a_term_are_not_ads(
    detector: ModerationDetector, text: str
) -> None:
    assert rule_of(detector, text) == "ok"


@settings(max_examples=60, deadline=None)
@given(
    term=st.sampled_from(["套现", "代还", "养卡", "黑户贷款", "一清机", "包提额"]),
    separators=st.lists(
        st.sampled_from([" ", "-", "·", "💰", "★", "\u3000", "_", "/", "～", "❤️"]),
        min_size=5,
        max_size=5,
    ),
)
def test_separators_between_characters_never_hide_a_term(
    detector: ModerationDetector, term: str, separators: list[str]
) -> None:
    spread = "".join(ch + sep for ch, sep in zip(term, separators, strict=False)).rstrip()
    assert detector.check(spread).category == "ad"


# --- context: mentions are not ads -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "怎么提额?",
        "我提额成功了",
        "分期手续费多少",
        "分期费率多少？",  # 费率 is offer phrasing, but this is a question
        "额度太低了，想申请提额",
        "POS机刷卡有积分吗",
        "信用卡套现违法吗",  # asks about an ad
        "刚才有人私聊我说能代还，是骗子吧",  # reports one
    ],
)
def test_mentions_and_questions_are_not_ads(detector: ModerationDetector, text: str) -> None:
    assert rule_of(detector, text) == "ok"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("专业提额，私聊", "ad.limit_boost"),
        ("提额找我", "ad.limit_boost"),
        ("有需要提额的吗？", "ad.limit_boost"),  # strong offer phrasing counts even in a question
        ("分期办理，费率优惠，欢迎咨询", "ad.loan"),  # weak phrasing, not a question
        ("POS机点位低", "ad.pos"),
        ("诚信套现，不是骗子", "ad.cashout"),  # "骗子" inside a reassurance is no warning
        ("有人加我vx abc12345说能套现，骗子吧", "ad.cashout"),  # a contact id outweighs a warning
    ],
)
def test_offer_phrasing_makes_a_mention_an_ad(
    detector: ModerationDetector, text: str, rule: str
) -> None:
    assert rule_of(detector, text) == rule


def test_offer_phrasing_must_be_near_the_term(detector: ModerationDetector) -> None:
    far = "我提额成功了，" + "今天天气真好我们一起去公园散步吧" * 2 + "私聊"
    assert rule_of(detector, far) == "ok"
    assert rule_of(detector, "我提额成功了，私聊") == "ad.limit_boost"


# --- links, contact ids, message kinds -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "看这里 http://example.org/x",
        "https://t.cn/A6xYz9",
        "www.daikuan88.com",
        "t.cn/abc",
        "详情 kuaizhuan.com",
        "详情 kuaizhuan点com",
        "详情 kuaizhuan。cn",
        "小店 shop.xiaodian.cn/p/8823",
    ],
)
def test_external_links(detector: ModerationDetector, text: str) -> None:
    assert rule_of(detector, text) == "ad.link"


@pytest.mark.parametrize(
    "text", ["价格3.5元", "11:30见", "v1.2版本", "邮箱在名片上", "2026.12.01", "请看群公告"]
)
def test_things_that_are_not_links(detector: ModerationDetector, text: str) -> None:
    assert rule_of(detector, text) == "ok"


def test_allowed_domains_and_their_subdomains_are_not_links() -> None:
    detector = ModerationDetector(ModerationSettings(allowed_domains=("bank.example.cn",)))
    assert rule_of(detector, "活动见 https://bank.example.cn/p") == "ok"
    assert rule_of(detector, "活动见 www.m.bank.example.cn") == "ok"
    assert rule_of(detector, "活动见 https://bank.example.cn.evil.com") == "ad.link"
    assert rule_of(detector, "见 https://bank.example.cn/x", kind="link_card") == "ok"


@pytest.mark.parametrize(
    "text",
    [
        "加我微信 abc_12345",
        "VX：qf88886",
        "V信 zhangjl_2024",
        "wx: loan8899",
        "薇：xyk66668",
        "扣扣 123456789",
        "邮箱 helper88@qq.com",
    ],
)
def test_contact_ids(detector: ModerationDetector, text: str) -> None:
    assert rule_of(detector, text) == "ad.contact_id"


@pytest.mark.parametrize("text", ["微信支付满50减10", "我的微信号是多少来着", "用微信还款可以吗"])
def test_talk_about_wechat_is_not_a_contact_id(detector: ModerationDetector, text: str) -> None:
    assert rule_of(detector, text) == "ok"


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        ("image_qr", "ad.qr_image"),
        ("contact_card", "ad.contact_card"),
        ("link_card", "ad.link_card"),
        ("image", "ok"),
    ],
)
def test_message_kinds(detector: ModerationDetector, kind: str, rule: str) -> None:
    assert rule_of(detector, "", kind=kind) == rule


# --- exemptions ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_staff_and_managers_are_exempt(detector: ModerationDetector, role: str) -> None:
    assert rule_of(detector, "提额找我，私聊，www.bank.com", role=role) == "ok"
    assert rule_of(detector, "", role=role, kind="image_qr") == "ok"
    assert rule_of(detector, "我的电话 13800138000", role=role) == "ok"
    history = [PastMessage(NOW - timedelta(minutes=1), "通知")] * 5
    assert rule_of(detector, "通知", role=role, at=NOW, history=history) == "ok"


def test_staff_posting_an_id_or_card_number_is_still_told(detector: ModerationDetector) -> None:
    assert rule_of(detector, "客户身份证440106198506120037", role="staff") == (
        "personal_data.id_card"
    )
    assert rule_of(detector, "卡号6217000123456788", role="manager") == "personal_data.bank_card"


# --- personal data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("卡号6217000123456788", "personal_data.bank_card"),
        ("卡号 6217 0001 2345 6788", "personal_data.bank_card"),
        ("我的身份证33010219870523102X", "personal_data.id_card"),
        ("我的身份证33010219870523102x", "personal_data.id_card"),
        ("手机13912345678", "personal_data.phone"),
        ("电话 139-1234-5678", "personal_data.phone"),
    ],
)
def test_personal_data(detector: ModerationDetector, text: str, rule: str) -> None:
    verdict = detector.check(text)
    assert verdict.rule == rule
    assert not any(ch.isdigit() for ch in verdict.reason), "the warning never repeats numbers"


def test_numbers_that_fail_their_checks_are_not_personal_data(
    detector: ModerationDetector,
) -> None:
    assert rule_of(detector, "订单6217000123456789") == "ok"  # Luhn fails
    assert rule_of(detector, "编号330102198705231021") == "ok"  # ID check character fails


# --- flooding --------------------------------------------------------------------------------


def _history(*minutes_ago: float, text: str = "大家帮我砍一刀") -> list[PastMessage]:
    return [PastMessage(NOW - timedelta(minutes=m), text) for m in minutes_ago]


def test_the_third_copy_within_the_window_is_a_flood(detector: ModerationDetector) -> None:
    assert rule_of(detector, "大家帮我砍一刀", at=NOW, history=_history(1)) == "ok"
    assert rule_of(detector, "大家帮我砍一刀", at=NOW, history=_history(1, 2)) == "flood.repeat"
    assert rule_of(detector, "大家帮我砍一刀", at=NOW, history=_history(1, 11)) == "ok"
    assert rule_of(detector, "大家帮我砍一刀", history=_history(1, 2)) == "ok"  # no time, no flood


def test_near_copies_count_as_copies(detector: ModerationDetector) -> None:
    history = _history(1, 2, text="大家帮我砍一刀🙏谢谢")
    assert rule_of(detector, "大家帮我砍一刀！！谢谢", at=NOW, history=history) == "flood.repeat"
    other = _history(1, 2, text="今天中午吃什么好呢")
    assert rule_of(detector, "大家帮我砍一刀！！谢谢", at=NOW, history=other) == "ok"


def test_flood_limits_are_configurable() -> None:
    strict = ModerationDetector(
        ModerationSettings(flood_repeats=2, flood_window=timedelta(minutes=30))
    )
    assert rule_of(strict, "大家帮我砍一刀", at=NOW, history=_history(20)) == "flood.repeat"


def test_messages_from_the_future_do_not_count(detector: ModerationDetector) -> None:
    assert rule_of(detector, "大家帮我砍一刀", at=NOW, history=_history(-1, -2)) == "ok"


def test_recent_messages_are_bounded_per_member_and_in_total() -> None:
    recent = RecentMessages(per_member=2, capacity=2)
    for i in range(3):
        recent.remember("g1", "u1", PastMessage(NOW, f"m{i}"))
    assert [m.text for m in recent.history("g1", "u1")] == ["m1", "m2"]
    recent.remember("g1", "u2", PastMessage(NOW, "x"))
    recent.remember("g2", "u1", PastMessage(NOW, "y"))  # g1/u1 is the least recently active
    assert recent.history("g1", "u1") == []
    assert [m.text for m in recent.history("g2", "u1")] == ["y"]


# --- bad input -------------------------------------------------------------------------------


def test_empty_and_emoji_only_messages_are_ok(detector: ModerationDetector) -> None:
    assert detector.check("") == Verdict("ok", "ok", "")
    assert rule_of(detector, "   \n\t") == "ok"
    assert rule_of(detector, "😂😂😂🧧🎉") == "ok"


def test_a_huge_message_is_read_only_up_to_the_limit(detector: ModerationDetector) -> None:
    limit = detector.settings.max_chars
    assert rule_of(detector, "今天天气不错。" * 15_000) == "flood.long"  # 105 KB of chatter
    assert rule_of(detector, "套现找我" + "。" * 100_000) == "ad.cashout"  # ad in the head
    # Only the head is read, so the cost is bounded: an ad past the limit goes unseen.
    assert rule_of(detector, "好" * limit + "套现找我") == "flood.long"


def test_binary_looking_text_and_lone_surrogates_do_not_crash(
    detector: ModerationDetector,
) -> None:
    binary = bytes(range(256)).decode("latin-1") * 40
    assert detector.check(binary).category in CLASSES
    assert rule_of(detector, "\x00\x01\x02\ufffd\ufeff") == "ok"
    assert rule_of(detector, "\ud800套\udfff现\udc00") == "ad.cashout"
    assert rule_of(detector, "\ud83d") == "ok"


def test_a_rare_han_character_without_a_pinyin_reading_gets_a_verdict() -> None:
    # pypinyin has no reading for 䎥 (found by the property test below); it once crashed.
    assert rule_of(_shared_detector(), "䎥") == "ok"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=300))
def test_any_text_gets_a_verdict_whose_reason_is_fixed_text(text: str) -> None:
    detector = _shared_detector()
    verdict = detector.check(
        text, at=NOW, history=[PastMessage(NOW - timedelta(minutes=1), text)] * 2
    )
    assert verdict.category in CLASSES
    # The reason is one of the lexicon's fixed sentences: a warning built on it cannot repeat
    # the message.
    assert verdict.reason == "" or verdict.reason == detector.lexicon.reason(verdict.rule)
    assert verdict.category == "ok" or verdict.rule.split(".")[0] in (
        "ad",
        "personal_data",
        "flood",
    )


_DETECTOR: list[ModerationDetector] = []


def _shared_detector() -> ModerationDetector:
    if not _DETECTOR:
        _DETECTOR.append(ModerationDetector())
    return _DETECTOR[0]


# --- strikes ---------------------------------------------------------------------------------


def test_a_member_is_removed_at_the_nth_strike() -> None:
    book = StrikeBook(StrikePolicy(remove_after=3), InMemoryStrikes())
    ad = Verdict("ad", "ad.cashout", "禁止发布信用卡套现广告")
    outcomes = [book.record("g1", "u1", ad, NOW + timedelta(hours=i)) for i in range(3)]
    assert [(o.strikes, o.remove, o.remaining) for o in outcomes if o] == [
        (1, False, 2),
        (2, False, 1),
        (3, True, 0),
    ]
    other = book.record("g2", "u1", ad, NOW)  # strikes are per group
    assert other is not None and other.strikes == 1


def test_personal_data_and_ok_are_not_strikes() -> None:
    repo = InMemoryStrikes()
    book = StrikeBook(StrikePolicy(), repo)
    assert (
        book.record("g1", "u1", Verdict("personal_data", "personal_data.phone", "x"), NOW) is None
    )
    assert book.record("g1", "u1", Verdict("ok", "ok", ""), NOW) is None
    assert repo.count("g1", "u1", None) == 0


def test_old_strikes_expire_and_cleared_strikes_are_forgotten() -> None:
    repo = InMemoryStrikes()
    book = StrikeBook(StrikePolicy(remove_after=2, window=timedelta(days=7)), repo)
    flood = Verdict("flood", "flood.repeat", "请勿重复刷屏")
    book.record("g1", "u1", flood, NOW - timedelta(days=8))
    decision = book.record("g1", "u1", flood, NOW)
    assert decision is not None and (decision.strikes, decision.remove) == (1, False)
    repo.clear("g1", "u1")
    assert repo.count("g1", "u1", None) == 0


@given(remove_after=st.integers(1, 20), strikes=st.integers(0, 40))
def test_the_policy_removes_exactly_from_the_nth_strike(remove_after: int, strikes: int) -> None:
    decision = StrikePolicy(remove_after=remove_after).decide(strikes)
    assert decision.remove == (strikes >= remove_after)
    assert decision.remaining == max(0, remove_after - strikes)


@pytest.mark.parametrize(
    "kwargs", [{"remove_after": 0}, {"window": timedelta(0)}, {"window": timedelta(days=-1)}]
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StrikePolicy(**kwargs)  # type: ignore[arg-type]


# --- the lexicon -----------------------------------------------------------------------------


def test_every_keyword_rule_has_a_reason_without_placeholders() -> None:
    lexicon = default_lexicon()
    for rule in (*lexicon.rules, "ad.link", "ad.contact_id", "ad.qr_image", "flood.long"):
        reason = lexicon.reason(rule)
        assert reason != "违反群规" and "{" not in reason, rule


def test_a_lexicon_file_of_another_shape_is_a_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("rules:\n  ad.x:\n    strong: [a]\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"lexicon\.yaml: rules\.ad\.x\.reason"):
        Lexicon.from_yaml(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="broken.yaml"):
        Lexicon.from_yaml(broken)


def test_a_custom_lexicon_folds_its_terms_like_messages(tmp_path: Path) -> None:
    custom = tmp_path / "lexicon.yaml"
    text = DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "rules:\n",
        "rules:\n  ad.stock:\n    reason: 禁止发布荐股广告\n    strong: [荐　股, ＶＩＰ群]\n",
        1,
    )
    custom.write_text(text, encoding="utf-8")
    detector = ModerationDetector(lexicon=Lexicon.from_yaml(custom))
    assert rule_of(detector, "免费荐股") == "ad.stock"
    assert rule_of(detector, "进vip群") == "ad.stock"
