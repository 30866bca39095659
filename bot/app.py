"""Composition root: builds config, database, gateway, services and the time loop.

This is the only module that picks implementations; services receive their dependencies.
The same :class:`Qunfu` runs live (real or scaled clock, events from the gateway) and in
simulations (virtual clock, stepped by :mod:`bot.simulation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from geopy.geocoders.base import Geocoder
from loguru import logger

from bot.accounts import AccountBook, AccountHealthWatch, AccountMap, plan_accounts
from bot.campaigns import CampaignPlanner
from bot.config import Settings
from bot.dispatcher import Dispatcher
from bot.entry import (
    EntryFunnel,
    EntryJoins,
    EntryService,
    Gazetteer,
    GroupQrCodes,
    OverflowPlacement,
    ReferralCodes,
    make_geocoder,
)
from bot.entry.referral_codes import referral_secret
from bot.entry.seats import MemberCounts
from bot.entry.waitlist import Waitlist
from bot.events import Event, Say, contact_conv
from bot.expiry import ExpiryReport
from bot.faq import FaqIndex
from bot.gateways.base import ChatGateway
from bot.handlers import (
    EntryFlowHandler,
    FaqHandler,
    Handler,
    HandlerContext,
    JoinRequestHandler,
    MembershipHandler,
    ModerationHandler,
    PrivateHelpHandler,
)
from bot.handlers.lottery import LotteryEntryHandler
from bot.handlers.moderation import shared_detector
from bot.handlers.optout import OptOutHandler
from bot.handlers.referrals import LeaderboardHandler, MyReferralsHandler
from bot.handlers.tickets import TicketReplyHandler
from bot.leases import AccountLeases
from bot.lottery import LotteryService
from bot.moderation.strikes import StrikeBook, StrikePolicy
from bot.opsdata import heap
from bot.opsdata.bundle import OpsData
from bot.opsdata.loader import OpsDataSource, load_opsdata
from bot.opsdata.problems import OpsDataError
from bot.optout import MarketingOptOut
from bot.outbox import Outbox, OutboxItem
from bot.referral_notices import ReferralNotices
from bot.referrals import build_referrals
from bot.referrals.fulfilment import RewardFulfilment
from bot.referrals.signatures import push_secret
from bot.retry import fault_reason
from bot.routing import GroupIndex
from bot.scheduling import CampaignScheduler
from bot.templating import check_templates
from bot.tickets import ChatContext, TicketDesk
from bot.wakeups import Listener
from bot.welcome import WelcomeService
from db.account_repositories import AccountHealthRepo, GroupAccountRepo
from db.entry_repositories import EntryRepo, QrCodeRepo, ReferralCodeRepo, SeatsRepo, WaitlistRepo
from db.moderation_repositories import StrikeRepo
from db.repositories import CheckpointRepo, GroupRepo, MembershipRepo, OccurrenceRepo
from db.session import make_engine, upgrade
from db.ticket_repositories import TicketRepo
from scheduler.clock import Clock, RealClock

# How long a thread holding the GIL may keep it while another waits (sys.setswitchinterval).
GIL_SWITCH_INTERVAL_S = 0.0005


class Qunfu:
    """A running bot: ops data, storage, services and a gateway, wired together."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        gateway: ChatGateway,
        source: OpsDataSource,
        *,
        database_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.gateway = gateway
        self.source = source
        # Fan-outs, reloads and database calls run in worker threads while the event loop
        # answers members: a thread that wants the GIL gets it within 0.5 ms, not the default
        # 5 ms. It costs nothing while no other thread is waiting for it.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        url = database_url or settings.database.url
        _ensure_sqlite_dir(url)
        upgrade(url)
        self.engine = make_engine(url, echo=settings.database.echo)
        self.groups = GroupRepo(self.engine)
        self.memberships = MembershipRepo(self.engine)
        # Each group's account (DESIGN.md core loop 5): the outbox asks the book who sends.
        self.accounts = AccountBook(settings.bot_accounts())
        self.group_accounts = GroupAccountRepo(self.engine)
        self.account_health = AccountHealthRepo(self.engine)
        self.outbox = Outbox(
            self.engine, settings.outbox, settings.quiet_hours, clock, settings.bot_accounts()
        )
        self.outbox.route = self.accounts.account_for
        self.outbox.local = self.accounts.local_accounts
        # Several processes on PostgreSQL share the accounts by leases (bot/leases.py); each
        # recovers the sends in hand of the accounts it takes. Alone (SQLite), it recovers all.
        self.leases: AccountLeases | None = None
        if self.engine.dialect.name == "postgresql":
            self.leases = AccountLeases(
                self.engine,
                lambda: self.accounts.map.ids,
                ttl=settings.database.lease_ttl,
                on_acquired=self.outbox.recover,
                in_hand=self.outbox.in_hand,
            )
            self.accounts.held = self.leases.held
            self.leases.start()
        else:
            self.outbox.recover()
        self.seats = SeatsRepo(self.engine)
        # Live member counts in memory (routing, entry API, private chat); see bot/entry/seats.py.
        self.member_counts = MemberCounts(self.groups)
        self.waitlist_repo = WaitlistRepo(self.engine)
        self.waitlist = Waitlist(
            self.waitlist_repo,
            self.outbox,
            radius_m=settings.offer_radius_m,
            account=settings.bot.id,
        )
        self._wake = asyncio.Event()
        self._reloading = asyncio.Lock()
        self._planner: CampaignPlanner | None = None
        self._index: GroupIndex | None = None
        self._ops: OpsData | None = None
        self._gazetteer: Gazetteer | None = None
        self._geocoder: Geocoder | None = None
        self._faq: FaqIndex | None = None
        if source.current is None:
            raise OpsDataError([])  # load_source() gives a source with data; this is a bug
        self._apply(source.current)
        self.scheduler = CampaignScheduler(
            self.planner,
            self.outbox,
            OccurrenceRepo(self.engine),
            CheckpointRepo(self.engine),
            clock,
            settings.outbox.grace,
            account=settings.bot.id,
            holder=self.leases.holder if self.leases else None,
            lease_time=self.leases.clock.now if self.leases else None,
            claim_for=settings.database.lease_ttl,
            solo=self.leases is None,
        )
        # Marketing opt-out (退订 / 订阅): welcomes and lotteries leave opted-out members out.
        self.optout = MarketingOptOut(self.engine)
        self.welcome = WelcomeService(
            self.planner,
            self.memberships,
            self.outbox,
            clock,
            settings.welcome.batch_window,
            settings.welcome.campaign,
            account=settings.bot.id,
            opted_out=self.optout.among,
            ours=self.accounts.serves_here,
        )
        self.lottery = LotteryService(
            self.planner, self.engine, self.outbox, clock, self._staff, account=settings.bot.id
        )
        self.expiries = ExpiryReport(
            self.outbox,
            CheckpointRepo(self.engine),
            self.planner,
            clock,
            settings.outbox.grace,
            settings.entry.ops_contacts,
        )
        self.health_watch = AccountHealthWatch(
            self.accounts, self.account_health.set, self._tell_ops
        )
        self._build_entry(settings, clock, gateway)
        self.referrals, self.referral_intake = build_referrals(self)
        self.referral_notices = ReferralNotices(
            self.referrals,
            self.referral_codes,
            lambda: self.ops,
            self.engine,
            self.outbox,
            clock,
            settings.web.base_url(),
            account=settings.bot.id,
            shout_out=settings.referral.shout_out,
        )
        self.referrals.on_granted.append(self.referral_notices.congratulate)
        # Reward pushes to referral.push_url (off when unset), retried with the outbox's policy.
        self.fulfilment = RewardFulfilment(
            self.engine,
            clock,
            settings.outbox,
            push_url=settings.referral.push_url,
            push_key=push_secret(settings),
            timeout=settings.referral.push_timeout,
        )
        # Tickets and their SLA (docs/support.md); the context is the last few group messages.
        self.tickets = TicketDesk(
            TicketRepo(self.engine),
            self.outbox,
            clock,
            lambda: self.ops,
            settings.support,
            settings.entry.ops_contacts,
            account=settings.bot.id,
        )
        self.chat_context = ChatContext(settings.support.context_messages)
        self.dispatcher = Dispatcher(
            self._handlers(settings),
            HandlerContext(self.planner, self.outbox, clock, settings.bot.id),
        )

    def _handlers(self, settings: Settings) -> list[Handler]:
        """The dispatcher's handlers in the order events meet them (DESIGN.md core loop 2).

        A new feature is a new handler put in its place here. Named slots, in order, for
        handlers still to come are marked ``slot:``.
        """
        joins = EntryJoins(self.visits, settings.entry.match_window)
        self.entry_flow = EntryFlowHandler(
            self.planner,
            self.index,
            self.member_counts,
            radius_m=settings.routing.radius_m,
            limit=settings.routing.limit,
            beyond_m=settings.routing.beyond_m,
            placement=self.placement,
            joins=joins,
            waitlist=self.waitlist,
            seats=self.seats,
        )
        staff = frozenset((*settings.entry.ops_contacts, *settings.moderation.staff))
        ops_contacts = frozenset(settings.entry.ops_contacts)
        moderation = settings.moderation
        return [
            # Bookkeeping every later handler relies on; runs for every join and leave.
            MembershipHandler(
                self.memberships, self.member_counts, joins=joins, waitlist=self.waitlist
            ),
            # Moderation sees every group message first: warns, counts strikes, removes.
            ModerationHandler(
                functools.partial(shared_detector, moderation),
                staff=lambda: staff,
                strikes=StrikeBook(StrikePolicy.from_settings(moderation), StrikeRepo(self.engine)),
                remove_members=moderation.remove_members,
                ops_contacts=lambda: ops_contacts,
            ),
            # Member commands and opt-out: opt-out first, so nothing after it sends marketing
            # to a member who just left it.
            OptOutHandler(self.optout),
            JoinRequestHandler(self.seats, joins),
            MyReferralsHandler(self.referral_notices),
            LeaderboardHandler(self.referral_notices),
            LotteryEntryHandler(self.lottery),
            # Managers' replies to tickets (#<n> text, #<n> 关闭, 工单), private.
            TicketReplyHandler(self.tickets),
            # The entry flow: location offers, number picks, invite codes, the waitlist.
            self.entry_flow,
            # Last: FAQ answers, and escalation when the FAQ has none.
            FaqHandler(self.faq, self.tickets, self.chat_context, settings.faq),
            # A private text nothing above took: what the bot can do, not silence.
            PrivateHelpHandler(),
        ]

    def _staff(self) -> frozenset[str]:
        """Contacts who may not win a lottery: ops contacts, managers and the bot itself."""
        managers = self.ops.manager_contacts
        return frozenset((*self.settings.entry.ops_contacts, *managers, self.settings.bot.id))

    def may_moderate(self, group_id: str, sender_id: str) -> bool:
        """Whether moderation could act on a message: in a welfare group, from someone who is
        not staff, a manager or the bot (a gateway asks before it fetches an image to scan)."""
        ops = self.ops
        if group_id not in ops.groups:
            return False
        settings = self.settings
        exempt = {*settings.entry.ops_contacts, *settings.moderation.staff, settings.bot.id}
        return sender_id not in exempt and sender_id not in ops.manager_contacts

    def _build_entry(self, settings: Settings, clock: Clock, gateway: ChatGateway) -> None:
        """The live-code entry path: placement with overflow, referral codes, QR codes, funnel."""
        entry = settings.entry
        self.visits = EntryRepo(self.engine)
        self.placement = OverflowPlacement(
            self.index,
            self.member_counts,
            self.outbox,
            clock,
            radius_m=settings.offer_radius_m,
            limit=settings.routing.limit,
            ops_contacts=entry.ops_contacts,
            account=settings.bot.id,
            beyond_m=settings.routing.beyond_m,
        )
        self.referral_codes = ReferralCodes(
            ReferralCodeRepo(self.engine), referral_secret(settings)
        )
        self.qrcodes = GroupQrCodes(QrCodeRepo(self.engine), gateway, clock, entry.qr_refresh_after)
        self.entry = EntryService(
            ops=lambda: self.ops,
            gazetteer=self.gazetteer,
            geocoder=self.geocoder,
            visits=self.visits,
            referrals=self.referral_codes,
            placement=self.placement,
            qrcodes=self.qrcodes,
            counts=self.member_counts,
            clock=clock,
            settings=entry,
            bot_name=settings.bot.name,
        )
        self.funnel = EntryFunnel(self.visits, clock, entry.retention)

    # --- ops data --------------------------------------------------------------------------------

    def planner(self) -> CampaignPlanner:
        """The planner for the live ops data."""
        assert self._planner is not None
        return self._planner

    def faq(self) -> FaqIndex:
        """The FAQ index of the live ops data."""
        assert self._faq is not None
        return self._faq

    def index(self) -> GroupIndex:
        """The routing index for the live groups directory."""
        assert self._index is not None
        return self._index

    @property
    def ops(self) -> OpsData:
        """The live ops data."""
        assert self._ops is not None
        return self._ops

    def gazetteer(self) -> Gazetteer:
        """The offline gazetteer from the live ops data."""
        assert self._gazetteer is not None
        return self._gazetteer

    def geocoder(self) -> Geocoder:
        """The configured geocoder (the gazetteer by default)."""
        assert self._geocoder is not None
        return self._geocoder

    def _apply(self, ops: OpsData) -> None:
        """Make ``ops`` live now (start-up and the synchronous :meth:`reload`)."""
        self._swap(self._prepare(ops))

    def _prepare(self, ops: OpsData) -> _Version:
        """Everything a new ops-data version needs before it goes live: planner, routing
        index, gazetteer, and the groups directory synced into the database (with the member
        counts and the waitlist that follow it). Heavy at 20,000 groups, and touching nothing
        the live version uses, so a reload runs it in a worker thread."""
        accounts, changes = plan_accounts(
            ops.groups.values(), self.settings.bot_accounts(), self.group_accounts.load()
        )
        self.group_accounts.save(changes, self.clock.now())  # sticky from now on
        planner = CampaignPlanner(
            ops,
            self.settings.quiet_hours,
            merchant_radius_m=self.settings.routing.merchant_radius_m,
            accounts=accounts,
        )
        planner.prepare()
        gazetteer = Gazetteer(ops.gazetteer)
        version = _Version(
            ops=ops,
            planner=planner,
            index=GroupIndex(ops.groups.values()),
            gazetteer=gazetteer,
            geocoder=make_geocoder(self.settings.entry, gazetteer),
            faq=FaqIndex.build(ops.faq, self.settings.faq),  # jieba loads here, off the loop
            accounts=accounts,
        )
        # Synced before the swap: the live index never routes to a group the database (or the
        # member counts) does not know yet.
        before = self.seats.seats()
        self.groups.sync(ops.groups.values())
        self.member_counts.reload()  # groups new to the directory come with seeded counts
        self._tell_waitlist(ops, before)
        return version

    def _swap(self, version: _Version) -> None:
        """Put a prepared version live: plain assignments, on the loop, between two awaits, so
        no reader sees half of one version and half of another."""
        self._planner = version.planner
        self._index = version.index
        self._ops = version.ops
        self._gazetteer = version.gazetteer
        self._geocoder = version.geocoder
        self._faq = version.faq
        self.accounts.swap(version.accounts)
        map_rooms = getattr(self.gateway, "map_rooms", None)
        if callable(map_rooms):
            map_rooms({g.id: g.room for g in version.ops.groups.values() if g.room})

    def _tell_waitlist(self, ops: OpsData, before: dict[str, tuple[int, int]]) -> None:
        """Groups new to the directory, or given room by a bigger capacity, may end a wait."""
        if not self.waitlist.has_waiting():
            return
        after = self.seats.seats()
        opened = [
            g
            for g in ops.groups.values()
            if g.id in after
            and after[g.id][0] < after[g.id][1]
            and (g.id not in before or before[g.id][0] >= before[g.id][1])
        ]
        members = {g.id: after[g.id][0] for g in opened}
        self.waitlist.opened(opened, members, self.clock.now())

    def reload(self) -> list[str]:
        """Re-read ops data; a broken edit is reported and the last good data stays live.

        Synchronous, for tools and tests; the running bot uses :meth:`reload_async`.
        """
        ops, problems = self.source.reload()
        if problems:
            return _rejected(problems)
        if ops is not None and ops is not self._ops:
            self._swap(self._prepare(ops))
            self._reloaded(ops)
        return []

    async def reload_async(self) -> list[str]:
        """:meth:`reload` without stalling the loop: reading, checking, indexing and syncing
        the directory run in a worker thread; only the swap onto the live bot runs here."""
        async with self._reloading:  # two edits in a row: applied in order, never interleaved
            # No full garbage collection while the new version is built: each would walk both
            # versions holding the GIL, stalling the loop (bot/opsdata/heap.py).
            with heap.collection_paused():
                ops, problems = await asyncio.to_thread(self.source.reload)
                if problems:
                    return _rejected(problems)
                if ops is not None and ops is not self._ops:
                    self._swap(await asyncio.to_thread(self._prepare, ops))
                    heap.settle()
                    self._reloaded(ops)
            return []

    def _reloaded(self, ops: OpsData) -> None:
        self._wake.set()
        logger.info(
            "ops data reloaded: {} campaigns, {} groups", len(ops.campaigns), len(ops.groups)
        )

    async def _tell_ops(self, key: str, text: str, about: str) -> None:
        """A private message to every ops contact, through an account other than ``about``
        when there is one (the account the message is about may be the one that is down)."""
        others = [a for a in self.accounts.map.ids if a != about]
        items = [
            OutboxItem(
                key=f"{key}:{c}",
                action=Say(contact_conv(c), text),
                not_before=self.clock.now(),
                account=others[0] if others else about,
            )
            for c in self.settings.entry.ops_contacts
        ]
        await asyncio.to_thread(self.outbox.enqueue, items)

    # --- the time loop ---------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Process one event from the gateway through the handler pipeline (database work in
        worker threads); events are handled one at a time, in the order they are given."""
        self.accounts.saw(event)  # replies to a person go back through the account they wrote to
        await self.dispatcher.dispatch(event)
        self._wake.set()

    def next_due(self) -> datetime | None:
        """The earliest instant any service has work."""
        times = [
            t
            for t in (
                self.scheduler.next_due(),
                self.welcome.next_due(),
                self.tickets.next_due(),
                self.lottery.next_due(),
                self.expiries.next_due(),
                self.fulfilment.next_due(),
                self.outbox.next_due(),
                self.dispatcher.next_retry(),
            )
            if t is not None
        ]
        return min(times) if times else None

    async def run_due(self) -> None:
        """Do all work due at the clock's now, in order: deferred events, schedule, welcome,
        send. Database work and fan-outs run in worker threads; this awaits them."""
        await self.dispatcher.retry_deferred()
        try:
            await self.scheduler.run_due()
        except Exception as exc:  # safe: only the checkpoint's own I/O raises here, and then
            # nothing was recorded: the occurrences are planned again on the next pass
            logger.opt(exception=exc).error("campaign scheduling failed: {}", fault_reason(exc))
        try:
            await self.welcome.run_due()
        except Exception as exc:  # safe: batches stay unwelcomed until a pass gets through
            logger.opt(exception=exc).error("welcome failed: {}", fault_reason(exc))
        try:
            await self.tickets.run_due()
        except Exception as exc:  # safe: SLA steps stay due until a pass gets through
            logger.opt(exception=exc).error("ticket SLA pass failed: {}", fault_reason(exc))
        try:  # after the scheduler: an announcement just queued gets its round (and seed) now
            await self.lottery.run_due()
        except Exception as exc:  # safe: rounds stay open and undrawn until a pass gets through
            logger.opt(exception=exc).error("lottery pass failed: {}", fault_reason(exc))
        try:
            await self.health_watch.look(self.gateway, self.clock.now())
            await self.expiries.run_due()
        except Exception as exc:  # safe: both look again on the next pass
            logger.opt(exception=exc).error("account health or expiry pass failed: {}", exc)
        try:
            await self.fulfilment.run_due()
        except Exception as exc:  # safe: a reward is marked sent only on a 2xx, so the rest
            # stay pending and due, and the next pass pushes them
            logger.opt(exception=exc).error("reward push pass failed: {}", fault_reason(exc))
        await self.outbox.deliver_due(self.gateway)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Live mode: consume gateway events and do due work until ``stop`` is set."""
        consumer = asyncio.create_task(self._consume())
        stopper = asyncio.create_task(self._wake_on(stop))
        listener = None
        if self.leases is not None:
            # Other processes queue sends for accounts this one holds: woken by their NOTIFY.
            loop = asyncio.get_running_loop()
            listener = Listener(self.engine, lambda: loop.call_soon_threadsafe(self._wake.set))
            await asyncio.to_thread(listener.start)
        try:
            while not stop.is_set():
                horizon = self.clock.now() + timedelta(seconds=30)
                try:
                    # Cleared before the pass, not after: a wake-up (an event, or ``stop``)
                    # that comes during the pass is kept, and the loop goes round at once.
                    self._wake.clear()
                    await self.run_due()
                    nxt = await asyncio.to_thread(self.next_due)  # database reads
                except Exception as exc:  # safe: no work is marked done on a fault (the
                    # outbox, scheduler and welcomes keep theirs); e.g. the database is down
                    logger.opt(exception=exc).error("bot loop failed; retrying in 5 s: {}", exc)
                    nxt = self.clock.now() + timedelta(seconds=5)
                await self.clock.sleep_until(min(nxt, horizon) if nxt else horizon, self._wake)
        finally:
            for task in (consumer, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if listener is not None:
                await asyncio.to_thread(listener.stop)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _consume(self) -> None:
        async for event in self.gateway.events():
            await self.handle(event)

    def close(self) -> None:
        """Release the database (and, on PostgreSQL, this process's leases)."""
        if self.leases is not None:
            self.leases.stop()
        self.engine.dispose()


@dataclass(frozen=True)
class _Version:
    """One ops-data version with what is built from it, ready to go live whole."""

    ops: OpsData
    planner: CampaignPlanner
    index: GroupIndex
    gazetteer: Gazetteer
    geocoder: Geocoder
    faq: FaqIndex
    accounts: AccountMap


def _rejected(problems: Sequence[object]) -> list[str]:
    for p in problems:
        logger.error("ops data rejected, keeping the last good version: {}", p)
    return [str(p) for p in problems]


def _ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


def load_ops(settings: Settings, *, check: bool = True) -> OpsData:
    """The ops data, loaded once; raise :class:`OpsDataError` when it is broken.

    ``check=False`` skips rendering every campaign's template against a sample
    context (what a reload does before a version goes live): for commands that use only part
    of the ops data (``qunfu route``, ``qunfu preview``), which need not pay for the rest.
    """
    if not check:
        return load_opsdata(settings.campaigns_dir, settings.templates_dir)
    ops = load_source(settings).current
    assert ops is not None  # load_source raises rather than return an empty source
    return ops


def load_source(settings: Settings) -> OpsDataSource:
    """Load the ops data once; raise :class:`OpsDataError` when it is broken at start."""
    # Templates are compiled and rendered against a sample context before a version goes live,
    # so a broken template edit is rejected like a broken YAML edit.
    source = OpsDataSource(
        settings.campaigns_dir,
        settings.templates_dir,
        check=lambda ops: check_templates(ops, RealClock().now()),
    )
    ops, problems = source.reload()
    if problems or ops is None:
        raise OpsDataError(problems)
    return source
