"""What members read about their referrals: ``我的邀请``, ``邀请排行`` and tier congratulations.

The texts are built here from the ledger's answers (bot.referrals.ReferralLedger ``progress``,
``leaderboard`` and its ``on_granted`` hook); the handlers only route and answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from loguru import logger
from sqlalchemy import Engine

from bot.entry.referral_codes import ReferralCodes
from bot.events import Say, contact_conv, room_conv
from bot.opsdata.bundle import OpsData
from bot.outbox import Outbox, OutboxItem
from bot.privacy import mask, mask_name
from bot.referrals import Grant, ReferralLedger
from db.engagement_repositories import MemberDirectory
from scheduler.clock import SHANGHAI, Clock

__all__ = ["ReferralNotices", "qr_path"]

NOT_OPEN = "邀请有礼活动暂未开放，开放后会第一时间通知您，感谢关注！"
LEADERBOARD_SIZE = 10


def qr_path(code: str) -> str:
    """The web path of the QR image of a member's referral link (the code is all it holds)."""
    return f"/r/{quote(code)}/qr.svg"


@dataclass
class ReferralNotices:
    """Builds the referral answers and queues tier congratulations."""

    ledger: ReferralLedger
    codes: ReferralCodes
    ops: Callable[[], OpsData]
    engine: Engine
    outbox: Outbox
    clock: Clock
    base_url: str
    account: str = "bot"
    shout_out: bool = False

    def __post_init__(self) -> None:
        self._members = MemberDirectory(self.engine)

    def link(self, code: str) -> str | None:
        """The member's entry link on the referral channel; None without such a channel."""
        channel = next((c for c in self.ops().channels.values() if c.referral and c.enabled), None)
        if channel is None:
            return None
        return f"{self.base_url}/join?{urlencode({'channel': channel.id, 'ref': code})}"

    def my_referrals(self, person_id: str, at: datetime) -> str:
        """The answer to ``我的邀请``: code, link, QR address and progress to the next tier."""
        try:
            code = self.codes.issue(person_id, at)
        except RuntimeError:  # QUNFU_REFERRAL_SECRET is not set: no code can be signed
            logger.bind(member=mask(person_id)).warning("我的邀请 asked before the secret is set")
            return NOT_OPEN
        link = self.link(code)
        if link is None:
            return NOT_OPEN
        lines = [
            f"您的专属邀请码：{code}",
            f"邀请链接：{link}",
            f"邀请二维码：{self.base_url}{qr_path(code)}",
        ]
        programme = self.ops().referral
        if programme is None:
            return "\n".join(lines)
        progress = self.ledger.progress(person_id)
        lines.append(f"已成功邀请 {progress.counted} 位好友。")
        if progress.next_tier is not None:
            lines.append(
                f"再邀请 {progress.remaining} 位，可得「{progress.next_tier.reward}」"
                f"（满 {progress.next_tier.count} 位）。"
            )
        else:
            lines.append("您已达成全部奖励档位，感谢您的推荐！")
        if progress.window_closes is not None:
            closes = progress.window_closes.astimezone(SHANGHAI)
            lines.append(f"本期推荐计数截至 {closes:%Y年%m月%d日}。")
        return "\n".join(lines)

    def leaderboard(self) -> str:
        """The answer to ``邀请排行``: the top 10 with masked names."""
        top = self.ledger.leaderboard(LEADERBOARD_SIZE)
        if not top:
            return "邀请排行榜暂时还是空的，快来邀请好友办卡，争当第一吧！"
        names = self._members.names(p for p, _ in top)
        lines = [f"🏆 邀请排行榜（前{LEADERBOARD_SIZE}名）"]
        lines += [
            f"{i}. {mask_name(names.get(p, ''))} — {n} 位好友" for i, (p, n) in enumerate(top, 1)
        ]
        lines.append("发送「我的邀请」获取您的专属邀请链接。")
        return "\n".join(lines)

    def congratulate(self, grants: Sequence[Grant]) -> None:
        """Queue a private congratulation per new tier (the ledger's ``on_granted`` hook, in
        the thread that recorded the event) and, when configured, a group shout-out."""
        now = self.clock.now()
        items: list[OutboxItem] = []
        for g in grants:
            held = g.status == "held"
            text = f"🎉 恭喜您！已成功邀请 {g.tier} 位好友，获得奖励「{g.reward}」。" + (
                "奖励审核通过后发放。" if held else "奖励将尽快发放，请留意通知。"
            )
            items.append(
                self._item(
                    f"referral:{g.reward_id}:congrats", contact_conv(g.referrer_id), text, now
                )
            )
            if self.shout_out and not held:
                group = self._members.latest_group(g.referrer_id)
                if group is not None:
                    name = mask_name(self._members.names([g.referrer_id]).get(g.referrer_id, ""))
                    cheer = f"🎉 恭喜群友 {name} 成功邀请 {g.tier} 位好友，获得「{g.reward}」！"
                    items.append(
                        self._item(f"referral:{g.reward_id}:cheer", room_conv(group), cheer, now)
                    )
        self.outbox.enqueue(items)

    def _item(self, key: str, to: str, text: str, now: datetime) -> OutboxItem:
        return OutboxItem(key=key, action=Say(to, text), not_before=now, account=self.account)
