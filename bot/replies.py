"""Texts the bot composes itself (not from ops templates): route offers and warnings.

FAQ matching lives in bot/faq.py, ticket texts in bot/tickets.py."""

from __future__ import annotations

from collections.abc import Iterable

from bot.entry.overflow import Placement
from bot.routing import RouteResult
from bot.templating import distance, radius_text


def format_route_offer(results: list[RouteResult]) -> str:
    """The answer to a shared location: nearest groups with room, with distances."""
    if not results:
        return "抱歉，暂时没有可以加入的福利群。"
    lines = ["为您找到附近有空位的福利群："]
    lines.extend(_offer_lines(results))
    return "\n".join(lines)


def _offer_lines(results: list[RouteResult]) -> list[str]:
    lines = [
        f"{i}. {r.group.name}（{distance(r.distance_m)}，{r.members}/{r.group.capacity}人）"
        for i, r in enumerate(results, 1)
    ]
    lines.append("回复序号即可收到入群邀请。")
    return lines


def already_in(names: Iterable[str]) -> str:
    """Telling someone they are already in these groups."""
    return "您已在" + "".join(f"「{n}」" for n in names) + "中，无需重复加入。"


def format_placement(placed: Placement, radius_m: float, *, waiting: bool) -> str:
    """The answer to a shared location, saying plainly which case it is.

    Groups the person is in are named, never offered. "No group near you" and "every group
    near you is full" are different answers, and a message is promised only when ``waiting``
    (the person is on the waitlist for this area).
    """
    lines = [already_in(r.group.name for r in placed.already)] if placed.already else []
    other = "其他" if placed.already else ""
    if not placed.overflow:
        lines.append(f"为您找到附近{other}有空位的福利群：")
        lines.extend(_offer_lines(placed.results))
        return "\n".join(lines)
    radius = radius_text(radius_m)
    if placed.nearby == "full":
        lines.append(f"您附近{radius}内的{placed.full_nearby}个{other}福利群都已满员。")
    else:
        lines.append(f"您附近{radius}内还没有{other}福利群。")
    if waiting:
        lines.append("已为您登记，附近一有可以加入的群，我会第一时间私信通知您。")
    if placed.results:
        lines.append("您也可以先加入稍远一些的群：")
        lines.extend(_offer_lines(placed.results))
    else:
        lines.append("暂时没有其他可以加入的群。")
    return "\n".join(lines)


def moderation_warning(category: str, reason: str, remaining: int | None = None) -> str:
    """The warning to a poster in the group. ``reason`` is the lexicon's wording for the rule
    that matched, never the message itself, so the warning cannot repeat an ad or a number.
    ``remaining``: strikes left before removal, when the message was a strike."""
    if category == "personal_data":
        return f"温馨提示：您的{reason}。"
    left = f"再违规{remaining}次将被移出本群。" if remaining else ""
    if category == "ad":
        return f"温馨提示：本群{reason}，请遵守群规。{left}"
    return f"温馨提示：{reason}，请遵守群规。{left}"


def moderation_removal(reason: str, strikes: int) -> str:
    """Said in the group as a member is removed at their last strike (rule wording only)."""
    return f"温馨提示：{reason}。该成员已累计违规{strikes}次，已被移出本群。"


def moderation_report(
    group_name: str, member: str, reason: str, strikes: int, *, removed: bool
) -> str:
    """The private notice to a group's manager at a member's last strike. ``member`` comes
    masked; the message that broke the rule is never repeated, only the rule's wording."""
    outcome = "已自动移出本群" if removed else "已达移出标准，请人工处理"
    who = f"【群管理】「{group_name}」成员 {member}"
    return f"{who} 累计违规{strikes}次（最近一次：{reason}），{outcome}。"
