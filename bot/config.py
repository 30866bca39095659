"""Deployment settings: config.yaml validated by pydantic, overridable from the environment.

Any setting can be overridden with ``QUNFU_<SECTION>__<KEY>`` (for example
``QUNFU_DATABASE__URL`` or ``QUNFU_OUTBOX__RATE_PER_MINUTE``). Relative paths resolve against
the folder config.yaml is in. Secrets never live in the file: they are read from the
environment by name (see :class:`Secrets`).
"""

from __future__ import annotations

import os
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.moderation.settings import ModerationSettings
from bot.opsdata.models import Duration, TimeOfDay, Weekday


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotAccount(_Section):
    """The bot's own chat account."""

    id: str = "bot"
    name: str = "群福助手"


class AccountSettings(_Section):
    """One bot account that sends (DESIGN.md "Bot accounts"); unset limits take the outbox's.

    On Wechaty its puppet-service endpoint and token come from ``QUNFU_ACCOUNT_<ID>_ENDPOINT``
    and ``QUNFU_ACCOUNT_<ID>_TOKEN`` (see :mod:`bot.accounts`).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    name: str = "群福助手"
    rate_per_minute: float | None = Field(default=None, gt=0)
    daily_cap: int | None = Field(
        default=None, ge=0, description="most sends in one Asia/Shanghai day; 0 pauses the account"
    )


class DatabaseSettings(_Section):
    """Where state lives. ``sqlite:///var/qunfu.db`` is relative to config.yaml's folder."""

    url: str = "sqlite:///var/qunfu.db"
    echo: bool = False
    lease_ttl: Duration = Field(
        default=timedelta(seconds=25),
        description="PostgreSQL, several processes: an account's lease lasts this long without "
        "a heartbeat (renewed every third of it); a dead process's accounts move after it",
    )


class WelcomeSettings(_Section):
    """Newcomers joining within ``batch_window`` of the first one share one welcome."""

    batch_window: Duration = timedelta(seconds=10)
    campaign: str | None = Field(default=None, description="welcome campaign id; default: any")


class QuietHours(_Section):
    """No marketing sends between ``start`` and ``end`` (may wrap midnight)."""

    start: TimeOfDay = time(21, 30)
    end: TimeOfDay = time(8, 0)
    enabled: bool = True

    def contains(self, t: time) -> bool:
        """True when the time of day ``t`` falls inside the quiet hours."""
        if not self.enabled or self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class OutboxSettings(_Section):
    """Pacing and retries for every send."""

    rate_per_minute: float = Field(default=20.0, gt=0)
    jitter: Duration = timedelta(seconds=3)
    max_attempts: int = Field(default=5, ge=1)
    backoff: Duration = timedelta(seconds=5)
    max_backoff: Duration = timedelta(minutes=10)
    grace: Duration = timedelta(hours=1)
    daily_cap: int | None = Field(
        default=None, ge=0, description="default per-account daily cap; none: no daily cap"
    )
    seed: int | None = Field(default=None, description="fixed jitter seed (simulation)")
    retention: Duration = Field(
        default=timedelta(days=180),
        description="sent rows older than this are pruned by `qunfu outbox prune`, never by itself",
    )


class RoutingSettings(_Section):
    """Nearest-group search."""

    radius_m: float = Field(default=5000, gt=0)
    limit: int = Field(default=5, ge=1, le=50)
    beyond_m: float = Field(
        default=50_000,
        gt=0,
        description="when no group within the radius has room, groups up to this far are "
        "offered instead; none further (a group 1,000 km away helps nobody)",
    )
    merchant_radius_m: float = Field(default=1500, gt=0)


class EntrySettings(_Section):
    """The entry path: live-code page, geocoding, QR codes, overflow alerts, join matching.

    The referral-code secret is not here: it comes from ``QUNFU_REFERRAL_SECRET``.
    """

    geocoder: str = Field(
        default="gazetteer",
        description="gazetteer (offline) or a geopy service name, e.g. nominatim",
    )
    geocoder_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments for the geopy geocoder"
    )
    geocoder_crs: Literal["wgs84", "gcj02", "bd09"] = Field(
        default="wgs84", description="what an online geocoder returns (baidu: bd09)"
    )
    user_agent: str = "qunfu-entry"
    ops_contacts: list[str] = Field(
        default_factory=list, description="contact ids told when an area needs a new group"
    )
    overflow_radius_m: float | None = Field(
        default=None, gt=0, description="default: routing.radius_m"
    )
    scan_limit: int = Field(
        default=200,
        ge=1,
        le=500,
        description="from this member count a group is joined by invitation",
    )
    bot_wechat_id: str | None = Field(
        default=None, description="the bot's WeChat id, shown where the page says to add it"
    )
    bot_contact_qr: str | None = Field(
        default=None,
        description="payload (URL or text) of the bot's own contact QR code, shown on the page",
    )
    qr_refresh_after: Duration = timedelta(days=6)
    match_window: Duration = timedelta(minutes=30)
    retention: Duration = timedelta(days=7)


class SimulatorSettings(_Section):
    """The embedded simulator gateway used by ``qunfu run`` by default."""

    demo: Path | None = None
    speed: float = Field(default=1.0, gt=0)
    console: bool = True
    start: datetime | None = Field(
        default=None, description="without a demo: the simulated time the clock starts at"
    )
    started: datetime | None = Field(
        default=None,
        description="the real instant the clock read `start` (default: when the run starts); "
        "processes given the same pair share one simulated clock, restarts included",
    )


class ReferralSettings(_Section):
    """Partner webhooks, fraud holds and reward fulfilment (docs/referrals.md).

    Secrets are not here: ``QUNFU_REFERRAL_WEBHOOK_SECRET`` (comma-separated for rotation) signs
    inbound events, ``QUNFU_REFERRAL_PUSH_SECRET`` (default: the first webhook secret) outbound
    pushes.
    """

    tolerance: Duration = Field(
        default=timedelta(seconds=300), description="signature age allowed, both directions"
    )
    burst_count: int = Field(default=5, ge=2, description="this many qualifying friends ...")
    burst_window: Duration = Field(
        default=timedelta(minutes=60), description="... within this span: rewards held for review"
    )
    push_url: str | None = Field(default=None, description="POST each payable reward here")
    shout_out: bool = Field(
        default=False, description="a reached tier is also cheered in the member's group"
    )
    push_timeout: Duration = timedelta(seconds=10)


# fmt: off
_QUESTION_WORDS = (
    "怎么", "怎样", "如何", "什么", "为什么", "哪", "多少", "几", "能不能", "可不可以",
    "是不是", "有没有", "是否", "请问", "吗", "呢",
)
_TOPIC_WORDS = (
    "信用卡", "年费", "额度", "积分", "账单", "还款", "分期", "优惠", "活动", "权益",
    "办卡", "申请", "激活", "利息", "手续费", "福利",
)
_SENSITIVE_WORDS = (
    "投诉", "盗刷", "挂失", "被骗", "诈骗", "冒用", "丢失", "报警", "被盗", "维权",
)
_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
# fmt: on


class FaqSettings(_Section):
    """When the bot answers from the FAQ (bot/faq.py, docs/support.md)."""

    min_score: float = Field(
        default=0.5, ge=0, description="confidence below this is escalated, not answered"
    )
    keyword_weight: float = Field(default=0.5, ge=0, description="confidence per keyword hit")
    questions_without_mention: bool = Field(
        default=True, description="answer a clear question on a FAQ topic without an @-mention"
    )
    question_words: list[str] = Field(default_factory=lambda: list(_QUESTION_WORDS))
    topic_words: list[str] = Field(
        default_factory=lambda: list(_TOPIC_WORDS),
        description="a question without an @-mention must name one of these (or a FAQ keyword)",
    )


class BusinessHours(_Section):
    """When customer managers are expected to answer; SLA clocks run only inside them."""

    enabled: bool = False
    start: TimeOfDay = time(9, 0)
    end: TimeOfDay = time(18, 0)
    days: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK))


class SupportSettings(_Section):
    """Tickets and their SLA: escalations, managers' answers, reminders (docs/support.md)."""

    first_response: Duration = Field(
        default=timedelta(minutes=30),
        description="no answer from the manager within this: SLA missed, manager reminded",
    )
    escalate_after: Duration = Field(
        default=timedelta(minutes=30),
        description="still no answer this long after the reminder: backup manager / ops told",
    )
    urgent_first_response: Duration = Field(
        default=timedelta(minutes=10), description="first_response for sensitive topics"
    )
    relay: Literal["group", "private"] = Field(
        default="group", description="where a manager's answer reaches the member"
    )
    hotline: str = Field(default="95555", description="official hotline told on sensitive topics")
    sensitive_words: list[str] = Field(default_factory=lambda: list(_SENSITIVE_WORDS))
    context_messages: int = Field(default=5, ge=0, le=20, description="recent group messages sent")
    business_hours: BusinessHours = BusinessHours()


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65535)
    enabled: bool = False
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the address members open (links and QR codes sent in chat); "
        "default: http://HOST:PORT",
    )

    def base_url(self) -> str:
        """Where links sent in chat point: ``public_url`` without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class WechatySettings(_Section):
    """Endpoint and token come from WECHATY_PUPPET_SERVICE_ENDPOINT / _TOKEN."""

    tls: bool = False
    tls_ca: Path | None = None
    server_name: str | None = None
    accept_friendships: bool = True
    login_timeout: Duration = timedelta(minutes=2)


class Settings(BaseSettings):
    """The whole of config.yaml."""

    model_config = SettingsConfigDict(
        env_prefix="QUNFU_", env_nested_delimiter="__", extra="forbid"
    )

    gateway: Literal["simulator", "wechaty"] = "simulator"
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    campaigns_dir: Path = Path("campaigns")
    templates_dir: Path = Path("templates")
    bot: BotAccount = BotAccount()
    accounts: list[AccountSettings] = Field(
        default_factory=list, description="bot accounts; omitted: one account named after bot.id"
    )
    database: DatabaseSettings = DatabaseSettings()
    welcome: WelcomeSettings = WelcomeSettings()
    quiet_hours: QuietHours = QuietHours()
    outbox: OutboxSettings = OutboxSettings()
    routing: RoutingSettings = RoutingSettings()
    entry: EntrySettings = EntrySettings()
    simulator: SimulatorSettings = SimulatorSettings()
    web: WebSettings = WebSettings()
    referral: ReferralSettings = ReferralSettings()
    faq: FaqSettings = FaqSettings()
    support: SupportSettings = SupportSettings()
    moderation: ModerationSettings = ModerationSettings()
    wechaty: WechatySettings = WechatySettings()
    log_level: str = "INFO"
    base_dir: Path = Field(default=Path("."), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, as deployments expect.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        base = self.base_dir
        self.campaigns_dir = _under(base, self.campaigns_dir)
        self.templates_dir = _under(base, self.templates_dir)
        if self.simulator.demo is not None:
            self.simulator.demo = _under(base, self.simulator.demo)
        self.database.url = resolve_sqlite_url(self.database.url, base)
        return self

    @property
    def offer_radius_m(self) -> float:
        """The radius a newcomer is offered groups within (entry page, private chat, waitlist,
        ``qunfu route``): ``entry.overflow_radius_m``, else ``routing.radius_m``."""
        return self.entry.overflow_radius_m or self.routing.radius_m

    def bot_accounts(self) -> list[AccountSettings]:
        """The accounts that send, in config order, every limit filled in.

        ``accounts:`` omitted means one account named after ``bot.id`` with the outbox's limits.
        """
        # Not validated: on Wechaty bot.id becomes the logged-in account's platform id.
        default = AccountSettings.model_construct(id=self.bot.id, name=self.bot.name)
        listed = self.accounts or [default]
        return [
            a.model_copy(
                update={
                    "rate_per_minute": a.rate_per_minute or self.outbox.rate_per_minute,
                    "daily_cap": a.daily_cap if a.daily_cap is not None else self.outbox.daily_cap,
                }
            )
            for a in listed
        ]


def _under(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative ``sqlite:///file`` URL absolute against ``base``; others pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        rel = url[len(prefix) :]
        return prefix + str((base / rel).resolve())
    return url


def secret(name: str) -> str | None:
    """A secret from the environment (tokens, webhook keys); never from a file in the repo."""
    value = os.environ.get(name)
    return value or None


def settings_from_mapping(data: dict[str, Any], base_dir: Path) -> Settings:
    """Validate an already-parsed config mapping; relative paths resolve against ``base_dir``."""
    return Settings(**{**data, "base_dir": base_dir.resolve()})
