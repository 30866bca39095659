"""Tickets: questions the bot cannot answer, handed to the group's customer manager and back.

The loop (docs/support.md): a member's question becomes ticket ``#n`` (numbered by the
database); the group's manager gets a private message with the group, the member (masked), the
question and the last few group messages (masked); the member is told in the group where the
question went. The manager answers privately ``#n text`` and the bot relays it to the member
(in the group, @-mentioning them, or privately by config); ``#n 关闭`` resolves; ``工单`` lists
the manager's unresolved tickets.

SLA (Chatwoot's model, first response only): an open ticket with no answer after
``support.first_response`` (``urgent_first_response`` for sensitive topics), counted in
business hours when they are configured, records a miss (once) and reminds the manager; after
``escalate_after`` more it goes to the backup manager (``backup:`` in the managers file) or,
without one, to the ops contacts. Timers are rows (``ticket.sla_due_at``) driven by the bot's
clock through :meth:`TicketDesk.next_due` / :meth:`TicketDesk.run_due`, as welcomes are.

Every send goes through the outbox with a key derived from the ticket and step, so a step run
twice (a retry, a second process) sends once. Personal data is masked in every stored and sent
text (:func:`bot.privacy.mask_text`); a manager's answer is masked before it reaches a group.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, TypeVar

from loguru import logger
from sqlmodel import Session

from bot.config import BusinessHours, SupportSettings
from bot.events import Person, Say, contact_conv, room_conv
from bot.faq import TermSet, normalise, strip_mentions
from bot.opsdata.bundle import OpsData
from bot.opsdata.models import WEEKDAYS, CustomerManager
from bot.outbox import Outbox, OutboxItem
from bot.privacy import mask, mask_text
from bot.retry import DEFAULT_POLICY, RetryPolicy, fault_reason
from db.ticket_repositories import Ticket, TicketRepo
from scheduler.clock import SHANGHAI, Clock

__all__ = ["BusinessClock", "ChatContext", "Escalation", "TicketDesk", "masked_name"]

T = TypeVar("T")
_CONTEXT_CHARS = 60
_QUESTION_CHARS = 500
_ANSWER_CHARS = 1000
_LIST_LIMIT = 20


def masked_name(person: Person) -> str:
    """A member as managers see them: first character of the nickname and a masked id."""
    name = mask_text(person.name.strip())[:1]
    return f"{name}*（{mask(person.id)}）" if name else mask(person.id)


class BusinessClock:
    """Business hours arithmetic: SLA time counts only inside the configured hours."""

    def __init__(self, hours: BusinessHours) -> None:
        self._hours = hours
        self._days = {WEEKDAYS.index(d) for d in hours.days}
        self.enabled = hours.enabled and bool(self._days) and hours.start < hours.end

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside business hours (always, when they are not configured)."""
        if not self.enabled:
            return True
        local = at.astimezone(SHANGHAI)
        return local.weekday() in self._days and self._hours.start <= local.time() < self._hours.end

    def next_open(self, at: datetime) -> datetime:
        """``at`` if business hours are on, else when they next start."""
        if self.is_open(at):
            return at
        local = at.astimezone(SHANGHAI)
        day = local.date()
        for _ in range(8):
            start = datetime.combine(day, self._hours.start, tzinfo=SHANGHAI)
            if day.weekday() in self._days and start > local:
                return start
            day += timedelta(days=1)
        return at  # unreachable: some weekday is open

    def add(self, at: datetime, span: timedelta) -> datetime:
        """The instant ``span`` of business time after ``at``."""
        if not self.enabled:
            return at + span
        left = span
        now = self.next_open(at)
        while True:
            end = datetime.combine(now.astimezone(SHANGHAI).date(), self._hours.end, SHANGHAI)
            if now + left <= end:
                return now + left
            left -= end - now
            now = self.next_open(end)


class ChatContext:
    """The last few messages of each group, masked and cut short, for managers' context.

    In memory and bounded: ``size`` messages per group, the least recently active groups
    forgotten beyond ``max_groups``. Lost on restart, which only shortens one context.
    """

    def __init__(self, size: int, max_groups: int = 20_000) -> None:
        self._size = size
        self._max = max_groups
        self._groups: OrderedDict[str, deque[str]] = OrderedDict()

    def record(self, group_id: str, sender: Person, text: str) -> None:
        """Remember a message said in a group."""
        if self._size <= 0:
            return
        line = f"{masked_name(sender)}：{mask_text(text[: _CONTEXT_CHARS * 4])[:_CONTEXT_CHARS]}"
        ring = self._groups.get(group_id)
        if ring is None:
            ring = self._groups[group_id] = deque(maxlen=self._size)
            if len(self._groups) > self._max:
                self._groups.popitem(last=False)
        else:
            self._groups.move_to_end(group_id)
        ring.append(line)

    def recent(self, group_id: str) -> tuple[str, ...]:
        """The group's remembered messages, oldest first."""
        return tuple(self._groups.get(group_id, ()))


@dataclass(frozen=True)
class Escalation:
    """A question to hand to a person: who asked, where, and what came before."""

    key: str
    group_id: str
    member: Person
    question: str
    at: datetime
    context: tuple[str, ...] = ()
    topic: str = ""
    """The sensitive word that made it urgent ("" for an ordinary question)."""


class TicketDesk:
    """Opens tickets, relays managers' answers, and drives the SLA (module docstring)."""

    def __init__(
        self,
        repo: TicketRepo,
        outbox: Outbox,
        clock: Clock,
        ops: Callable[[], OpsData],
        settings: SupportSettings,
        ops_contacts: Sequence[str] = (),
        account: str = "bot",
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ops = ops
        self.settings = settings
        self._ops_contacts = tuple(ops_contacts)
        self._account = account
        self.retry = retry
        self.hours = BusinessClock(settings.business_hours)
        self.sensitive = TermSet(settings.sensitive_words)
        self._staff: tuple[int, frozenset[str]] = (0, frozenset())

    # -- who is who ------------------------------------------------------------------------

    def is_staff(self, contact_id: str) -> bool:
        """Managers, backups and ops contacts (in memory, per ops-data version)."""
        ops = self._ops()
        if self._staff[0] != id(ops):
            contacts = ops.manager_contacts | set(self._ops_contacts)
            self._staff = (id(ops), frozenset(contacts))
        return contact_id in self._staff[1]

    def sensitive_topic(self, text: str) -> str:
        """The first configured sensitive word in ``text``, or ""."""
        found = self.sensitive.found(normalise(text))
        return min(found, key=self.sensitive.words.index) if found else ""

    def hotline_text(self) -> str:
        """What a member is told on a sensitive topic in the private chat."""
        return (
            f"您反映的情况很重要。如涉及盗刷、挂失、诈骗等紧急情况，请立即拨打官方客服热线 "
            f"{self.settings.hotline}；也可以在福利群里@我，我会为您转交客户经理。"
        )

    def _manager_of(self, group_id: str) -> CustomerManager | None:
        ops = self._ops()
        group = ops.groups.get(group_id)
        if group is None or group.manager is None:
            return None
        return ops.managers.get(group.manager)

    # -- opening ---------------------------------------------------------------------------

    def escalate(self, esc: Escalation) -> Ticket:
        """Open a ticket (once per ``esc.key``) and queue the manager's and member's messages.

        Synchronous (database): run it off the loop. Safe to run again: the ticket and each
        message are keyed, so a rerun adds nothing.
        """
        ops = self._ops()
        group = ops.groups.get(esc.group_id)
        manager = self._manager_of(esc.group_id)
        urgent = bool(esc.topic)
        first = self.settings.urgent_first_response if urgent else self.settings.first_response
        to = (manager.contact,) if manager is not None else self._ops_contacts
        ticket, new = self._repo.open(
            {
                "key": esc.key,
                "status": "open",
                "priority": "high" if urgent else "normal",
                "group_id": esc.group_id,
                "member_id": esc.member.id,
                "member_name": masked_name(esc.member),
                "question": _question(esc.question),
                "topic": esc.topic,
                "manager_id": manager.id if manager is not None else None,
                "manager_contact": manager.contact if manager is not None else None,
                "escalated_to": () if manager is not None else to,
                "created_at": esc.at,
                "waiting_since": esc.at,
                "sla_stage": 0,
                "sla_due_at": self.hours.add(esc.at, first),
                "answers": 0,
            }
        )
        log = logger.bind(ticket=ticket.number, group=esc.group_id, member=mask(esc.member.id))
        if new:
            log.info("ticket opened ({} priority)", ticket.priority)
        if manager is None:
            log.error(
                "group {} has no customer manager in the directory; ticket sent to {} ops contacts",
                esc.group_id,
                len(to),
            )
        if not to:
            log.error(
                "nobody to send ticket #{} to: no manager and no entry.ops_contacts", ticket.number
            )
        group_name = group.name if group is not None else esc.group_id
        brief = _ticket_brief(ticket, group_name, esc.context)
        hint = (
            f"请在{_span(first)}内回复。"
            if manager is not None
            else "本群未配置客户经理，请协助处理。"
        )
        items = [
            self._item(
                f"ticket:{ticket.number}:notify:{c}",
                Say(contact_conv(c), f"{brief}\n{hint}"),
                esc.at,
                ticket,
            )
            for c in to
        ]
        notice = self._member_notice(ticket, manager, esc.at) if to else self._nobody_notice(ticket)
        items.append(
            self._item(
                f"ticket:{ticket.number}:ack",
                Say(room_conv(esc.group_id), notice, (esc.member.id,)),
                esc.at,
                ticket,
            )
        )
        self._outbox.enqueue(items)
        return ticket

    def _nobody_notice(self, ticket: Ticket) -> str:
        """What a member is told when no manager and no ops contact can take the ticket: the
        truth (it is recorded, nobody has it yet) and how to reach the bank meanwhile."""
        hotline = self.settings.hotline.strip()
        reach = (
            f"拨打官方客服热线 {hotline}，或通过手机银行App在线客服、前往本行网点"
            if hotline
            else "通过手机银行App在线客服或前往本行网点"
        )
        if ticket.priority == "high":
            return (
                "您反映的情况很重要，但暂时没有工作人员能接手"
                f"（已登记为工单 #{ticket.number}）。"
                f"如涉及盗刷、挂失等紧急情况，请立即{reach}办理。"
            )
        return (
            f"抱歉，暂时没有工作人员能接手您的问题（已登记为工单 #{ticket.number}）。"
            f"如需帮助，请{reach}咨询。"
        )

    def _member_notice(self, ticket: Ticket, manager: CustomerManager | None, at: datetime) -> str:
        who = f"本群客户经理{manager.name}" if manager is not None else "人工客服"
        if ticket.priority == "high":
            text = (
                f"您反映的情况很重要，已紧急转交{who}处理（工单 #{ticket.number}）。"
                f"如涉及盗刷、挂失等紧急情况，请立即拨打官方客服热线 {self.settings.hotline}。"
            )
        else:
            text = f"您的问题已转交{who}（工单 #{ticket.number}），回复后我会第一时间告诉您。"
        if not self.hours.is_open(at):
            opens = self.hours.next_open(at)
            text += f"现在是非工作时间，预计{_when(opens, at)}起为您答复。"
        return text

    # -- managers' messages ----------------------------------------------------------------

    def manager_message(self, contact_id: str, text: str, at: datetime, key: str) -> str:
        """Act on a manager's private message; returns what happened (for logs and tests).

        ``#n text`` relays, ``#n 关闭`` resolves, ``工单`` lists; anything else gets help.
        Synchronous (database): run it off the loop; safe to run again (keyed sends).
        """
        command = parse_command(text)
        if command is None:
            self._tell(contact_id, _HELP, at, f"{key}:help")
            return "help"
        if command == "list":
            self._tell(contact_id, self._listing(contact_id, at), at, f"{key}:list")
            return "list"
        number, body = command
        ticket = self._repo.get(number)
        problem = self._refusal(ticket, number, contact_id, body)
        if problem is not None:
            group = ticket.group_id if ticket is not None else None
            self._tell(contact_id, problem, at, f"{key}:refused", group)
            return "refused"
        assert ticket is not None
        if body == "关闭":
            if not self._repo.resolve(number, contact_id, at):  # closed meanwhile by someone else
                closed = _ALREADY_CLOSED.format(number=number)
                self._tell(contact_id, closed, at, f"{key}:refused", ticket.group_id)
                return "refused"
            logger.bind(ticket=number, by=mask(contact_id)).info("ticket resolved")
            self._tell(contact_id, f"工单 #{number} 已关闭。", at, f"{key}:closed", ticket.group_id)
            return "resolved"
        self._relay(ticket, contact_id, body, at, key)
        return "relayed"

    def _refusal(self, ticket: Ticket | None, number: int, contact: str, body: str) -> str | None:
        if ticket is None:
            return f"没有找到工单 #{number}，请核对编号；发送「工单」查看您的待处理工单。"
        if not (ticket.answerable_by(contact) or contact in self._ops_contacts):
            return f"工单 #{number} 不是转给您的，无法回复；发送「工单」查看您的待处理工单。"
        if ticket.status == "resolved" and body == "关闭":
            return _ALREADY_CLOSED.format(number=number)
        if ticket.status == "resolved":
            return f"工单 #{number} 已关闭，无法再回复。如需继续跟进，请在群里直接联系该成员。"
        if not body:
            return (
                f"请在编号后写上回复内容，例如「#{number} 您好，……」；"
                f"结束工单请发「#{number} 关闭」。"
            )
        return None

    def _relay(self, ticket: Ticket, contact: str, body: str, at: datetime, key: str) -> None:
        answer = mask_text(body[: _ANSWER_CHARS * 2])[:_ANSWER_CHARS]
        who = self._name_of(contact)
        group = self._ops().groups.get(ticket.group_id)
        group_name = group.name if group is not None else ticket.group_id
        # A member who has left would never see an answer posted in the group: they get it
        # privately, and the manager is told so rather than "delivered".
        left = self.settings.relay == "group" and self._repo.member_left(ticket)
        if self.settings.relay == "private" or left:
            relay = Say(
                contact_conv(ticket.member_id),
                f"您在「{group_name}」提的问题（工单 #{ticket.number}），{who}回复：{answer}",
            )
        else:
            relay = Say(
                room_conv(ticket.group_id),
                f"{who}回复您的问题（工单 #{ticket.number}）：{answer}",
                (ticket.member_id,),
            )
        done = (
            f"该成员已退出「{group_name}」，您的回复已改为私信转告（工单 #{ticket.number}）。"
            if left
            else f"已转告成员（工单 #{ticket.number}）。"
        )
        ack = Say(contact_conv(contact), done)
        items = [
            self._item(f"{key}:relay", relay, at, ticket),
            self._item(f"{key}:relayed", ack, at, ticket),
        ]
        # The answer is recorded in the same transaction that queues it.
        self._outbox.enqueue(items, also=lambda s: TicketRepo(s).answered(ticket.number, at))
        logger.bind(ticket=ticket.number, by=mask(contact)).info(
            "ticket answer relayed{}", " privately: the member has left the group" if left else ""
        )

    def _name_of(self, contact: str) -> str:
        for m in self._ops().managers.values():
            if m.contact == contact:
                return f"客户经理{m.name}"
        return "工作人员"

    def _listing(self, contact: str, at: datetime) -> str:
        # An ops contact also sees the tickets that reached nobody (opened before any was set).
        unassigned = contact in self._ops_contacts
        tickets = self._repo.unresolved_for(contact, _LIST_LIMIT, unassigned=unassigned)
        if not tickets:
            return "您目前没有待处理的工单。"
        groups = self._ops().groups
        lines = [
            f"您有 {len(tickets)} 个待处理工单："
            if len(tickets) < _LIST_LIMIT
            else "您的待处理工单（最早的 20 个）："
        ]
        for t in tickets:
            group = groups.get(t.group_id)
            urgent = "【紧急】" if t.priority == "high" else ""
            state = "已回复" if t.status == "pending" else f"已等待{_span(at - t.waiting_since)}"
            lines.append(
                f"#{t.number} {urgent}{group.name if group else t.group_id} {t.member_name} "
                f"{state}：{t.question[:30]}"
            )
        lines.append("回复「#编号 内容」答复成员，「#编号 关闭」结束工单。")
        return "\n".join(lines)

    # -- SLA -------------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When the earliest SLA step is due (a database read: call it off the loop)."""
        due = self._repo.next_sla_due()
        return due.astimezone(SHANGHAI) if due is not None else None

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        return await self.retry.call_async(lambda: asyncio.to_thread(fn, *args), what=name)

    async def run_due(self) -> int:
        """Take every SLA step due at the clock's now (reminders, re-escalations)."""
        now = self._clock.now()
        done = 0
        for ticket in await self._db(self._repo.sla_due, now):
            try:
                done += await self._db(self._sla_step, ticket, now)
            except Exception as exc:  # safe: the step stays due and is tried on the next pass
                logger.bind(ticket=ticket.number).error("SLA step failed: {}", fault_reason(exc))
        return done

    def _sla_step(self, ticket: Ticket, now: datetime) -> int:
        """One ticket's due step: its sends and its new state in one transaction."""
        stage = ticket.sla_stage
        if stage == 0:
            items = self._reminder(ticket, now)
            due: datetime | None = self.hours.add(now, self.settings.escalate_after)
            missed: datetime | None = now
            to: tuple[str, ...] | None = None
        else:
            backups = self._backups(ticket)
            items = self._reescalation(ticket, backups, now)
            due, missed = None, None
            to = tuple(dict.fromkeys((*ticket.escalated_to, *backups)))

        def advance(session: Session) -> None:
            if not TicketRepo(session).advance(
                ticket.number, stage, due=due, missed_at=missed, escalated_to=to
            ):
                raise _Taken  # another process took this step: its sends roll back too

        try:
            if items:
                self._outbox.enqueue(items, also=advance)
            elif not self._repo.advance(
                ticket.number, stage, due=due, missed_at=missed, escalated_to=to
            ):
                return 0
        except _Taken:
            return 0
        return 1

    def _reminder(self, ticket: Ticket, now: datetime) -> list[OutboxItem]:
        waited = _span(now - ticket.waiting_since)
        text = (
            f"提醒：工单 #{ticket.number} 已等待{waited}，成员还在等您的回复。\n"
            f"问题：{ticket.question}\n回复「#{ticket.number} 内容」即可转告成员。"
        )
        to = (ticket.manager_contact,) if ticket.manager_contact else ticket.escalated_to
        logger.bind(ticket=ticket.number).warning("ticket SLA missed: first response late")
        return [
            self._item(
                f"ticket:{ticket.number}:remind:{c}", Say(contact_conv(c), text), now, ticket
            )
            for c in to
        ]

    def _backups(self, ticket: Ticket) -> tuple[str, ...]:
        """Who a late ticket goes to: the manager's backup, else the ops contacts."""
        manager = self._ops().managers.get(ticket.manager_id or "")
        backup = self._ops().managers.get(manager.backup or "") if manager is not None else None
        if backup is not None and backup.contact != ticket.manager_contact:
            return (backup.contact,)
        if manager is not None and manager.backup:
            logger.bind(ticket=ticket.number).error(
                "backup {!r} of manager {!r} is not in the directory; ops contacts told",
                manager.backup,
                manager.id,
            )
        return self._ops_contacts

    def _reescalation(
        self, ticket: Ticket, contacts: tuple[str, ...], now: datetime
    ) -> list[OutboxItem]:
        log = logger.bind(ticket=ticket.number, group=ticket.group_id)
        fresh = [c for c in contacts if c not in ticket.escalated_to]
        if not fresh:
            log.error("ticket #{} still unanswered and nobody else to escalate to", ticket.number)
            return []
        log.warning("ticket re-escalated to {} contacts", len(fresh))
        group = self._ops().groups.get(ticket.group_id)
        manager = self._ops().managers.get(ticket.manager_id or "")
        late = f"客户经理{manager.name}" if manager is not None else "负责人"
        brief = _ticket_brief(ticket, group.name if group else ticket.group_id, ())
        text = f"【转办】{late}已{_span(now - ticket.waiting_since)}未回复，请协助处理。\n{brief}"
        return [
            self._item(
                f"ticket:{ticket.number}:escalate:{c}", Say(contact_conv(c), text), now, ticket
            )
            for c in fresh
        ]

    # -- sends -----------------------------------------------------------------------------

    def _item(self, key: str, action: Say, at: datetime, ticket: Ticket) -> OutboxItem:
        return OutboxItem(
            key=key,
            action=action,
            not_before=at,
            campaign_id=f"ticket:{ticket.number}",
            group_id=ticket.group_id,
            marketing=False,
            account=self._account,
        )

    def _tell(
        self, contact: str, text: str, at: datetime, key: str, group: str | None = None
    ) -> None:
        """A private answer to a staff command; ``group``: the group of the ticket it is about,
        so ``qunfu audit --group`` shows it with the rest of that ticket (None: the list, help).
        """
        item = OutboxItem(
            key=key,
            action=Say(contact_conv(contact), text),
            not_before=at,
            group_id=group,
            account=self._account,
            reason="command:tickets",  # answers to managers' 工单 / #n commands
        )
        self._outbox.enqueue([item])


class _Taken(Exception):
    """Another process took an SLA step first."""


_HELP = (
    "您好！回复工单请用「#编号 回复内容」，例如「#12 您好，年费可以……」；"
    "「#编号 关闭」结束工单；发送「工单」查看您的待处理工单。"
)
_ALREADY_CLOSED = "工单 #{number} 之前已经关闭，无需再次关闭。"
_COMMAND = re.compile(r"^[#＃]\s*(\d{1,9})\s*(.*)$", re.DOTALL)


def parse_command(text: str) -> tuple[int, str] | Literal["list"] | None:
    """A manager's message as ``(number, body)``, ``"list"`` for 工单, or None."""
    text = text.strip()
    if text in ("工单", "我的工单", "工单列表"):
        return "list"
    m = _COMMAND.match(text)
    if m is None:
        return None
    return int(m.group(1)), m.group(2).strip()


def _question(text: str) -> str:
    """The question as stored and shown: mentions gone, personal data masked, bounded."""
    return mask_text(strip_mentions(text[: _QUESTION_CHARS * 2]))[:_QUESTION_CHARS] or "（空）"


def _ticket_brief(ticket: Ticket, group_name: str, context: tuple[str, ...]) -> str:
    urgent = "【紧急】" if ticket.priority == "high" else ""
    lines = [
        f"{urgent}新工单 #{ticket.number}",
        f"群：{group_name}",
        f"成员：{ticket.member_name}",
        f"问题：{ticket.question}",
    ]
    if context:
        lines.append("最近群消息：")
        lines.extend(f"· {c}" for c in context)
    lines.append(f"回复「#{ticket.number} 内容」即可转告成员；「#{ticket.number} 关闭」结束工单。")
    return "\n".join(lines)


def _span(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return f" {minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    return f" {hours} 小时" + (f" {minutes} 分钟" if minutes else "")


def _when(opens: datetime, now: datetime) -> str:
    local, today = opens.astimezone(SHANGHAI), now.astimezone(SHANGHAI).date()
    day: date = local.date()
    if day == today:
        prefix = "今天"
    elif day == today + timedelta(days=1):
        prefix = "明天"
    else:
        prefix = f"{day.month}月{day.day}日"
    return f"{prefix} {local:%H:%M} "
