"""Texts the bot composes itself (not from ops templates): route offers and FAQ answers."""

from __future__ import annotations

from collections.abc import Iterable

from bot.opsdata.models import FaqEntry
from bot.routing import RouteResult
from bot.templating import distance


def format_route_offer(results: list[RouteResult]) -> str:
    """The answer to a shared location: nearest groups with room, with distances."""
    if not results:
        return "抱歉，您附近暂时没有可加入的福利群，我们已记录您的位置，新群开通后第一时间通知您。"
    lines = ["为您找到附近有空位的福利群："]
    for i, r in enumerate(results, 1):
        seats = f"{r.members}/{r.group.capacity}人"
        lines.append(f"{i}. {r.group.name}（{distance(r.distance_m)}，{seats}）")
    lines.append("回复序号即可收到入群邀请。")
    return "\n".join(lines)


def answer_faq(faq: Iterable[FaqEntry], question: str) -> str | None:
    """The answer whose keywords best match the question, or None."""
    best, best_score = None, 0
    for entry in faq:
        score = sum(1 for k in entry.keywords if k and k in question)
        if score > best_score:
            best, best_score = entry.answer, score
    return best
