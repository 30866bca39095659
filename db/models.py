"""SQLModel tables: the whole persistent state of Qunfu.

Every timestamp column is :class:`UTCDateTime`: aware datetimes go in, aware UTC datetimes come
out, on SQLite (which has no time zone type and stores naive UTC text) as on PostgreSQL
(``timestamptz``). Convert to Asia/Shanghai at the edge, where a person sees the time.

The schema is created and changed only by the Alembic migrations in ``db/migrations``; the
application never calls ``create_all``.
"""

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive input is rejected, output is always aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the database stores aware instants")
        value = value.astimezone(UTC)
        # SQLite keeps text; a fixed naive-UTC spelling keeps comparisons and ordering right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json(*, default: Any) -> Any:
    return Field(default_factory=default, sa_type=sa.JSON, nullable=False)


OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "uncertain")
# Predicates of the outbox's partial indexes. Queries spell them the same way (bot.outbox), so
# both databases match the index in every plan.
PENDING = "status = 'pending'"
ATTENTION = "status IN ('sending', 'failed', 'uncertain')"
SENT = "status = 'sent'"
UNWELCOMED = "welcomed_at IS NULL AND left_at IS NULL"
OUTBOX_ACTIONS = ("say", "invite", "remove")
OCCURRENCE_STATUSES = ("enqueued", "missed", "skipped")
UNFINISHED_OCCURRENCE = "status = 'enqueued' AND fanned_out_at IS NULL"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class WelfareGroupRow(SQLModel, table=True):
    """A welfare group as last synced from the groups directory, with its live member count."""

    __tablename__ = "welfare_group"

    id: str = Field(primary_key=True, max_length=100)
    name: str
    city: str
    district: str = ""
    lat: float
    lon: float
    crs: str = Field(default="gcj02", max_length=8)
    capacity: int = 500
    member_count: int = 0
    tags: list[str] = _json(default=list)
    manager: str | None = None
    updated_at: datetime = _ts()


class PersonRow(SQLModel, table=True):
    """Someone the bot has seen in a group; ``opted_out`` means no marketing to them."""

    __tablename__ = "person"

    id: str = Field(primary_key=True, max_length=100)
    name: str = ""
    first_seen: datetime = _ts()
    opted_out: bool = False


class Membership(SQLModel, table=True):
    """One stay of a person in a group: join to leave. A rejoin is a new row."""

    __tablename__ = "membership"
    __table_args__ = (
        sa.Index("ix_membership_group_open", "group_id", "left_at"),
        sa.Index("ix_membership_person", "person_id"),
        # The few rows waiting for a welcome, asked for on every pass of the time loop.
        sa.Index(
            "ix_membership_unwelcomed",
            "group_id",
            "joined_at",
            sqlite_where=sa.text(UNWELCOMED),
            postgresql_where=sa.text(UNWELCOMED),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(foreign_key="welfare_group.id", max_length=100)
    person_id: str = Field(foreign_key="person.id", max_length=100)
    joined_at: datetime = _ts()
    left_at: datetime | None = _ts(nullable=True)
    inviter_id: str | None = None
    channel: str | None = None
    welcomed_at: datetime | None = _ts(nullable=True)


class ScheduleOccurrence(SQLModel, table=True):
    """What the scheduler did with one fire time of one campaign (enqueued, missed, skipped)."""

    __tablename__ = "schedule_occurrence"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "fire_at", name="uq_occurrence_campaign_fire"),
        sa.CheckConstraint(_in("status", OCCURRENCE_STATUSES), name="ck_occurrence_status"),
        # Fan-outs not finished: few, looked at on every scheduler pass (resumed when lapsed).
        sa.Index(
            "ix_occurrence_unfinished",
            "claimed_until",
            sqlite_where=sa.text(UNFINISHED_OCCURRENCE),
            postgresql_where=sa.text(UNFINISHED_OCCURRENCE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(max_length=100)
    fire_at: datetime = _ts()
    status: str = Field(max_length=16)
    reason: str = ""
    recorded_at: datetime = _ts()
    # The fan-out of an enqueued occurrence: the process doing it and until when its claim
    # holds (another process resumes it after that); fanned_out_at once every send is queued.
    holder: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = _ts(nullable=True)
    fanned_out_at: datetime | None = _ts(nullable=True)


class OutboxRow(SQLModel, table=True):
    """One send, from enqueue to its outcome. Rows with status ``sent`` are the audit log.

    ``next_attempt_at`` is the earliest instant the row may be tried: ``not_before`` at first,
    later pushed back by retries. ``last_attempt_at`` is when the gateway was last called for it
    (pacing counts it).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_outbox_key"),
        # Only partial indexes lead with the status, and pending rows are in no index but the
        # pending ones (and the keys): statistics taken while nothing was pending make any index
        # holding pending rows look like a one-row lookup to PostgreSQL, which then walks every
        # pending row through it (docs/design-notes.md, "Outbox at scale"). The claim and
        # next_due touch O(log n) entries of the pending indexes whatever the audit log's size.
        sa.Index(
            "ix_outbox_pending_claim",
            "account",
            "priority",
            "not_before",
            "id",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        ),
        sa.Index(
            "ix_outbox_pending_due",
            "account",
            "marketing",
            "next_attempt_at",
            "status",  # constant, but it makes the index covering for counts on SQLite
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        ),
        # Rows for ops to look at (failed, uncertain) and to recover at start-up (sending).
        sa.Index(
            "ix_outbox_attention",
            "status",
            "not_before",
            "id",
            sqlite_where=sa.text(ATTENTION),
            postgresql_where=sa.text(ATTENTION),
        ),
        # The audit log by time: audit, the retention count and pruning. The status is constant
        # here, but SQLite counts an index as covering only if it holds every column a query
        # names, and these queries name the status.
        sa.Index(
            "ix_outbox_sent_at",
            "status",
            "sent_at",
            "id",
            sqlite_where=sa.text(SENT),
            postgresql_where=sa.text(SENT),
        ),
        sa.CheckConstraint(_in("status", OUTBOX_STATUSES), name="ck_outbox_status"),
        sa.CheckConstraint(_in("action", OUTBOX_ACTIONS), name="ck_outbox_action"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255)
    account: str = Field(default="bot", max_length=100)
    action: str = Field(max_length=8)
    conversation: str = Field(max_length=200)
    text: str | None = None
    mentions: list[str] = _json(default=list)
    room: str | None = Field(default=None, max_length=100)
    contact: str | None = Field(default=None, max_length=100)
    campaign_id: str | None = Field(default=None, max_length=100, index=True)
    group_id: str | None = Field(default=None, max_length=100, index=True)
    reason: str | None = Field(default=None, max_length=200)
    """Why the bot sent it (``campaign:<id>``, ``ticket:<n>``, ``moderation:<rule>``,
    ``command:<name>``...): the audit log's reason column (bot/audit.py)."""
    marketing: bool = False
    priority: int = Field(
        default=0, sa_type=sa.SmallInteger, sa_column_kwargs={"server_default": "0"}
    )
    """Claimed before higher numbers: 0 for what a person waits for (replies, tickets,
    moderation, invitations, welcomes), 1 for campaign pushes (bot.outbox)."""
    not_before: datetime = _ts()
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    last_attempt_at: datetime | None = _ts(nullable=True)
    last_error: str | None = None
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)


class OutboxPacing(SQLModel, table=True):
    """Pacing state of one bot account: when its next send may go out.

    ``slot_at`` is the start of the account's next pacing slot and ``due_at`` the instant inside
    it, jitter included, from which the next gateway call may be made. ``last_call_at`` is the
    last gateway call; ``calls`` counts them and doubles as a version for compare-and-set, so
    two processes can never take the same slot.
    """

    __tablename__ = "outbox_pacing"

    account: str = Field(primary_key=True, max_length=100)
    slot_at: datetime | None = _ts(nullable=True)
    due_at: datetime | None = _ts(nullable=True)
    last_call_at: datetime | None = _ts(nullable=True)
    calls: int = 0
    # The account's daily cap: gateway calls made on ``day`` (an Asia/Shanghai date).
    day: date | None = Field(default=None, nullable=True)
    day_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Checkpoint(SQLModel, table=True):
    """A named instant, e.g. how far the scheduler has run (``scheduler``)."""

    __tablename__ = "checkpoint"

    name: str = Field(primary_key=True, max_length=100)
    value: datetime = _ts()


ENTRY_LOCATED_HOW = ("gps", "address", "district")
ENTRY_JOIN_METHODS = ("qr", "invite")


class EntryVisit(SQLModel, table=True):
    """One visit to a live code (``/join?channel=...``) and how far it went down the funnel.

    Stages: visited -> located -> group chosen -> joined (``person_id``, ``membership_id``);
    retention is read from the membership. ``lat``/``lon`` are WGS-84, rounded to about 100 m.
    ``invite_code`` is the short code a person sends the bot to be invited into a group that
    no longer takes QR scans.
    """

    __tablename__ = "entry_visit"
    __table_args__ = (
        sa.Index("ix_entry_visit_chosen", "chosen_group", "chosen_at"),
        sa.Index("ix_entry_visit_visited", "visited_at"),
        sa.UniqueConstraint("invite_code", name="uq_entry_visit_invite_code"),
        sa.CheckConstraint(
            _in("located_how", ENTRY_LOCATED_HOW) + " OR located_how IS NULL",
            name="ck_entry_visit_located_how",
        ),
        sa.CheckConstraint(
            _in("join_method", ENTRY_JOIN_METHODS) + " OR join_method IS NULL",
            name="ck_entry_visit_join_method",
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    channel: str = Field(max_length=50)
    ref_code: str | None = Field(default=None, max_length=40)
    referrer_id: str | None = Field(default=None, max_length=100)
    visited_at: datetime = _ts()
    located_at: datetime | None = _ts(nullable=True)
    located_how: str | None = Field(default=None, max_length=16)
    lat: float | None = None
    lon: float | None = None
    area: str | None = Field(default=None, max_length=100)
    overflow: bool = False
    chosen_group: str | None = Field(default=None, max_length=100)
    chosen_at: datetime | None = _ts(nullable=True)
    join_method: str | None = Field(default=None, max_length=8)
    invite_code: str | None = Field(default=None, max_length=8)
    invited_contact: str | None = Field(default=None, max_length=100, index=True)
    joined_at: datetime | None = _ts(nullable=True)
    person_id: str | None = Field(default=None, max_length=100)
    membership_id: int | None = None


class GroupQrCode(SQLModel, table=True):
    """The last join QR payload fetched from the platform for a group (they expire in 7 days)."""

    __tablename__ = "group_qrcode"

    group_id: str = Field(primary_key=True, max_length=100)
    payload: str
    fetched_at: datetime = _ts()


class ReferralCode(SQLModel, table=True):
    """A referral code issued to one person; codes not in this table are refused."""

    __tablename__ = "referral_code"

    code: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(max_length=100, index=True)
    issued_at: datetime = _ts()


WAITLIST_CHANNELS = ("chat",)


class WaitlistEntry(SQLModel, table=True):
    """Someone promised a private message when a group with room opens within ``radius_m``.

    ``area`` is the ~2 km grid cell of the point (bot.entry.overflow.grid_area), so a group that
    opens looks up only the cells its radius touches. One row per person per area; a person
    told and waiting again reopens the row (``waiting_since`` moves, ``notified_at`` clears).
    ``lat``/``lon`` are WGS-84.
    """

    __tablename__ = "entry_waitlist"
    __table_args__ = (
        sa.UniqueConstraint("contact", "area", name="uq_entry_waitlist_contact_area"),
        sa.Index("ix_entry_waitlist_area_notified", "area", "notified_at"),
        sa.CheckConstraint(_in("channel", WAITLIST_CHANNELS), name="ck_entry_waitlist_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact: str = Field(max_length=100)
    area: str = Field(max_length=100)
    lat: float
    lon: float
    radius_m: float
    channel: str = Field(default="chat", max_length=16)
    created_at: datetime = _ts()
    waiting_since: datetime = _ts()
    notified_at: datetime | None = _ts(nullable=True)
    notified_group: str | None = Field(default=None, max_length=100)


REFERRAL_EVENT_TYPES = ("application_submitted", "application_approved", "card_activated")
REFERRAL_EVENT_SOURCES = ("webhook", "import")
REWARD_STATUSES = ("pending", "held", "sent", "confirmed", "rejected")


class ReferralEventRow(SQLModel, table=True):
    """One partner conversion event, kept whether or not it counted (``outcome`` says why).

    ``event_id`` is unique: a replay inserts nothing. ``wins`` marks the applicant's first valid
    qualifying event (by ``occurred_at``, then ``event_id``); only those can count for a referrer.
    """

    __tablename__ = "referral_event"
    __table_args__ = (
        sa.UniqueConstraint("event_id", name="uq_referral_event_event_id"),
        sa.Index("ix_referral_event_referrer", "referrer_id", "wins", "occurred_at"),
        sa.Index("ix_referral_event_applicant", "applicant", "type"),
        sa.Index("ix_referral_event_outcome", "outcome", "referrer_id"),
        sa.CheckConstraint(_in("type", REFERRAL_EVENT_TYPES), name="ck_referral_event_type"),
        sa.CheckConstraint(_in("source", REFERRAL_EVENT_SOURCES), name="ck_referral_event_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200)
    type: str = Field(max_length=32)
    referral_code: str = Field(max_length=40)
    referrer_id: str = Field(max_length=100)
    applicant: str = Field(max_length=200)
    referrer_applicant: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = _ts()
    received_at: datetime = _ts()
    source: str = Field(default="webhook", max_length=16)
    wins: bool = False
    outcome: str = Field(default="", max_length=32)


class ReferralReward(SQLModel, table=True):
    """A tier reached by a referrer: at most one row per (referrer, tier), ever."""

    __tablename__ = "referral_reward"
    __table_args__ = (
        sa.UniqueConstraint("referrer_id", "tier", name="uq_referral_reward_referrer_tier"),
        sa.Index("ix_referral_reward_status", "status", "next_attempt_at"),
        sa.Index("ix_referral_reward_reached", "reached_at"),
        sa.CheckConstraint(_in("status", REWARD_STATUSES), name="ck_referral_reward_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    referrer_id: str = Field(max_length=100)
    tier: int
    reward: str
    status: str = Field(max_length=16)
    held_reason: str = ""
    reached_at: datetime = _ts()
    reached_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = _ts(nullable=True)
    decision_note: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    last_error: str = ""
    # A push in flight: the process that claimed the reward and until when (committed before
    # the HTTP call, so another process passes it over; a claim left by a process that died
    # lapses and the reward is pushed again under the same idempotency key).
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = _ts(nullable=True)


class ReferralRewardHistory(SQLModel, table=True):
    """Every status change of a reward: who, when, from what to what, and why.

    No foreign key: a reward withdrawn before any payment (a recount moved its friend to another
    referrer) is deleted, and its history stays as the record that it existed.
    """

    __tablename__ = "referral_reward_history"
    __table_args__ = (sa.Index("ix_referral_reward_history_reward", "reward_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int
    referrer_id: str = Field(max_length=100)
    tier: int
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    at: datetime = _ts()
    by: str = Field(default="system", max_length=100)
    note: str = ""


TICKET_STATUSES = ("open", "pending", "resolved")
TICKET_PRIORITIES = ("normal", "high")


class TicketRow(SQLModel, table=True):
    """A member's question handed to a person (bot/tickets.py); ``id`` is the ticket number.

    The number comes from the database (SQLite AUTOINCREMENT, a PostgreSQL identity), so
    several processes never hand out the same one and a number is never reused. ``key`` is the
    escalated message's idempotency key: the same event handled twice opens one ticket.
    ``sla_due_at`` is the next SLA step (reminder, then re-escalation) of an open ticket; the
    time loop reads the earliest through ``ix_ticket_sla_due``. Texts are stored masked.
    """

    __tablename__ = "ticket"
    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_ticket_key"),
        sa.Index("ix_ticket_sla_due", "sla_due_at"),
        sa.Index("ix_ticket_manager_status", "manager_contact", "status"),
        sa.Index("ix_ticket_group_created", "group_id", "created_at"),
        sa.CheckConstraint(_in("status", TICKET_STATUSES), name="ck_ticket_status"),
        sa.CheckConstraint(_in("priority", TICKET_PRIORITIES), name="ck_ticket_priority"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    status: str = Field(default="open", max_length=16)
    priority: str = Field(default="normal", max_length=16)
    group_id: str = Field(max_length=100)
    member_id: str = Field(max_length=100)
    member_name: str = ""
    question: str = ""
    topic: str = Field(default="", max_length=40)
    manager_id: str | None = Field(default=None, max_length=100)
    manager_contact: str | None = Field(default=None, max_length=100)
    escalated_to: str = ""
    created_at: datetime = _ts()
    waiting_since: datetime = _ts()
    first_response_at: datetime | None = _ts(nullable=True)
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=100)
    sla_stage: int = 0
    sla_due_at: datetime | None = _ts(nullable=True)
    sla_missed_at: datetime | None = _ts(nullable=True)
    answers: int = 0


OPTOUT_VIA = ("group", "private")


class OptOutEvent(SQLModel, table=True):
    """Every ``退订`` / ``订阅`` a member sent: who, in or out, when and where (the record).

    The current state is ``person.opted_out``; this table is the history ops staff audit.
    """

    __tablename__ = "optout_event"
    __table_args__ = (
        sa.Index("ix_optout_event_at", "at"),
        sa.Index("ix_optout_event_person", "person_id", "id"),
        sa.CheckConstraint(_in("via", OPTOUT_VIA), name="ck_optout_event_via"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(max_length=100)
    opted_out: bool
    at: datetime = _ts()
    via: str = Field(max_length=16)
    group_id: str | None = Field(default=None, max_length=100)


class LotteryRound(SQLModel, table=True):
    """One occurrence of a lottery campaign: its keyword, draw time and committed seed.

    ``committed`` (random) and ``seed`` are written when the announcement is queued, before any
    entry, so the draw cannot be steered afterwards; ``drawn_at`` marks the draw done.
    """

    __tablename__ = "lottery_round"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "occurrence", name="uq_lottery_round_occurrence"),
        sa.Index("ix_lottery_round_due", "drawn_at", "draw_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(max_length=100)
    occurrence: datetime = _ts()
    keyword: str = Field(max_length=40)
    committed: str = Field(max_length=64)
    seed: str = Field(max_length=64)
    draw_at: datetime = _ts()
    winners_per_group: int = 1
    prizes: list[str] = _json(default=list)
    created_at: datetime = _ts()
    drawn_at: datetime | None = _ts(nullable=True)


class LotteryEntry(SQLModel, table=True):
    """A member's entry in a round: one per member per round (the database refuses a second).

    ``excluded`` is set at the draw for an entry that could not win (opted out, left the group,
    staff), so ``qunfu lottery verify`` re-runs the draw on exactly the entries it saw.
    """

    __tablename__ = "lottery_entry"
    __table_args__ = (
        sa.UniqueConstraint("round_id", "person_id", name="uq_lottery_entry_person"),
        sa.Index("ix_lottery_entry_round_group", "round_id", "group_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="lottery_round.id")
    group_id: str = Field(max_length=100)
    person_id: str = Field(max_length=100)
    person_name: str = ""
    entered_at: datetime = _ts()
    excluded: str | None = Field(default=None, max_length=32)


class LotteryWinner(SQLModel, table=True):
    """A winner of a round in one group, with the rank drawn and the prize."""

    __tablename__ = "lottery_winner"
    __table_args__ = (
        sa.UniqueConstraint("round_id", "group_id", "rank", name="uq_lottery_winner_rank"),
        sa.UniqueConstraint("round_id", "person_id", name="uq_lottery_winner_person"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="lottery_round.id")
    group_id: str = Field(max_length=100)
    person_id: str = Field(max_length=100)
    rank: int
    prize: str = ""


class GroupAccount(SQLModel, table=True):
    """Which bot account serves a group: assigned once (balanced), then kept (sticky).

    A group pinned by the directory's ``account:`` is stored here too, so removing the pin
    leaves the group where it was (see :mod:`bot.accounts`).
    """

    __tablename__ = "group_account"

    group_id: str = Field(primary_key=True, max_length=100)
    account: str = Field(max_length=100, index=True)
    assigned_at: datetime = _ts()


class AccountHealth(SQLModel, table=True):
    """The last health a running bot saw for one account (``qunfu accounts`` reads it)."""

    __tablename__ = "account_health"

    account: str = Field(primary_key=True, max_length=100)
    up: bool = True
    last_error: str | None = None
    changed_at: datetime = _ts()


TABLES = (
    "welfare_group",
    "person",
    "membership",
    "schedule_occurrence",
    "outbox",
    "outbox_pacing",
    "checkpoint",
    "entry_visit",
    "group_qrcode",
    "referral_code",
    "entry_waitlist",
    "referral_event",
    "referral_reward",
    "referral_reward_history",
    "ticket",
    "optout_event",
    "lottery_round",
    "lottery_entry",
    "lottery_winner",
    "group_account",
    "account_health",
    "moderation_strike",
)


class ModerationStrikeRow(SQLModel, table=True):
    """One moderation strike: a member's ad or flood in a group (bot/moderation/strikes.py).

    Counted per member per group within the policy's window through the unique index
    ``uq_strike_message`` (group, member, time), which also makes the same message handled
    twice one strike. The rule is kept, never the message.
    """

    __tablename__ = "moderation_strike"
    __table_args__ = (
        sa.UniqueConstraint("group_id", "member_id", "at", name="uq_strike_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(max_length=100)
    member_id: str = Field(max_length=100)
    rule: str = Field(max_length=60)
    at: datetime = _ts()


class WorkerLease(SQLModel, table=True):
    """A running ``qunfu run`` process on PostgreSQL, alive while ``expires_at`` is ahead."""

    __tablename__ = "worker_lease"

    holder: str = Field(primary_key=True, max_length=100)
    started_at: datetime = _ts()
    expires_at: datetime = _ts()


class AccountLease(SQLModel, table=True):
    """Which process sends for an account, until ``expires_at`` (renewed by its heartbeat)."""

    __tablename__ = "account_lease"

    account: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=100)
    acquired_at: datetime = _ts()
    expires_at: datetime = _ts()
