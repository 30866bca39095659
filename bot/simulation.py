"""Scripted scenarios on the simulator gateway with a virtual clock (``qunfu simulate``).

A scenario is a YAML file (see DESIGN.md, "Scenario file"): a start instant and steps that
people perform or that move the clock. The runner feeds each step to the simulator, lets the bot
react at that instant, and moves time from one due instant to the next, so schedules, batching
windows and pacing behave exactly as they would live.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from loguru import logger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bot.app import Qunfu, load_source
from bot.config import Settings
from bot.configfile import load_settings
from bot.events import Invite, MessageKind, Remove, Say, SentAction
from bot.gateways.simulator import SimulatorGateway, UnknownPeer
from bot.logs import follow_clock
from bot.opsdata.models import Crs, Duration
from bot.opsdata.problems import OpsDataError, Problem, read_yaml, validate
from scheduler.clock import VirtualClock, aware

_MAX_STEPS_PER_ADVANCE = 1_000_000


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ContactStep(_Step):
    id: str
    name: str = ""


class SayStep(_Step):
    """A message; ``kind`` (default ``text``) also posts a contact card, a link card (``text``:
    its URL) or an image (``image_qr``: one with a QR code), with ``text`` optional for them."""

    from_: str = Field(alias="from")
    text: str = ""
    room: str | None = None
    mentions: list[str] = []
    kind: MessageKind = "text"

    @model_validator(mode="after")
    def _text_needed(self) -> SayStep:
        if self.kind == "text" and "text" not in self.model_fields_set:
            raise ValueError("a text message needs `text` (or give another `kind`)")
        return self


class LocationStep(_Step):
    from_: str = Field(alias="from")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Crs = "gcj02"
    room: str | None = None


class JoinStep(_Step):
    room: str
    members: list[str] = Field(min_length=1)
    inviter: str | None = None


class LeaveStep(_Step):
    room: str
    members: list[str] = Field(min_length=1)


class WebhookStep(_Step):
    """An inbound HTTP event: ``json`` (or a raw ``body`` with ``headers``), optionally signed.

    ``sign: true`` adds ``X-Qunfu-Signature`` made with the configured webhook secret at the
    virtual clock's time; ``referrer: CONTACT_ID`` fills ``json.referral_code`` with that
    contact's referral code (issued on the spot if they have none).
    """

    path: str
    json_: dict[str, Any] | None = Field(default=None, alias="json")
    body: str | None = None
    headers: dict[str, str] = {}
    sign: bool = False
    referrer: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> WebhookStep:
        if self.json_ is not None and self.body is not None:
            raise ValueError("a webhook step has `json` or `body`, not both")
        if self.referrer is not None and self.body is not None:
            raise ValueError("`referrer` fills json.referral_code: use `json`, not `body`")
        return self


@dataclass(frozen=True)
class WebhookCall:
    """A webhook step as the transcript shows it: where it was posted and the status it got."""

    at: datetime
    path: str
    status: int


Transcribed = SentAction | WebhookCall


Instant = Annotated[datetime, BeforeValidator(lambda v: v)]


class Step(_Step):
    """Exactly one of the step kinds."""

    contact: ContactStep | None = None
    say: SayStep | None = None
    location: LocationStep | None = None
    join: JoinStep | None = None
    leave: LeaveStep | None = None
    advance: Duration | None = None
    until: Instant | None = None
    webhook: WebhookStep | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) != 1:
            raise ValueError(
                "each step has exactly one key: contact, say, location, join, "
                "leave, advance, until or webhook"
            )
        return data


class Scenario(_Step):
    """A scenario file."""

    start: datetime
    config: Path | None = None
    steps: list[Step] = []


def load_scenario(path: Path) -> tuple[Scenario, list[tuple[int, int]]]:
    """Parse and validate a scenario; return it with each step's (line, col)."""
    doc = read_yaml(path)
    scenario = validate(doc, Scenario)
    step_pos = [doc.key_pos(("steps", i)) for i in range(len(scenario.steps))]
    return scenario, step_pos


def action_record(sent: Transcribed) -> dict[str, Any]:
    """A transcript line in the contract's JSON shape."""
    at = sent.at.isoformat()
    if isinstance(sent, WebhookCall):
        return {"at": at, "action": "webhook", "path": sent.path, "status": sent.status}
    a = sent.action
    record: dict[str, Any]
    if isinstance(a, Say):
        record = {"at": at, "action": "say", "to": a.to, "text": a.text}
        record["mentions"] = list(a.mentions)
    elif isinstance(a, Invite):
        record = {"at": at, "action": "invite", "room": a.room, "contact": a.contact}
    elif isinstance(a, Remove):
        record = {"at": at, "action": "remove", "room": a.room, "contact": a.contact}
    else:
        raise TypeError(f"unknown action {a!r}")
    record["account"] = sent.account  # DESIGN.md: every action line names its account
    return record


class Simulation:
    """A scenario being played: a bot on a simulator gateway, a virtual clock and a temp DB."""

    def __init__(
        self,
        scenario: Scenario,
        scenario_path: Path,
        settings: Settings,
        step_positions: list[tuple[int, int]] | None = None,
        keep_db: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.path = scenario_path
        self.clock = VirtualClock(aware(scenario.start))
        self.gateway = SimulatorGateway(self.clock, settings.bot.id, settings.bot.name)
        for account in settings.bot_accounts():  # each account a simulated bot
            self.gateway.add_account(account.id, account.name)
        self._tmp = tempfile.TemporaryDirectory(prefix="qunfu-sim-")
        # keep_db: the run's database stays there for inspection (`qunfu lottery verify`).
        db_file = keep_db if keep_db is not None else Path(self._tmp.name) / "sim.db"
        url = f"sqlite:///{db_file}"
        self.bot = Qunfu(
            settings, self.clock, self.gateway, load_source(settings), database_url=url
        )
        for group in self.bot.planner().ops.groups.values():
            self.gateway.add_room(group.id, group.name)
        add_staff_contacts(self.gateway, self.bot)
        self.gateway.record_undeliverable = True  # reported as warnings after the run
        self._positions = step_positions or []
        self._webhooks: list[tuple[int, WebhookCall]] = []
        self.warnings: list[Problem] = []

    async def run(self) -> list[Transcribed]:
        """Play every step; return the transcript. A send to a contact or room the simulator
        does not know (the scenario never introduced them, and they are no manager or ops
        contact of the config) is not delivered and becomes a warning in :attr:`warnings`,
        located at the step during which it was made (each recipient once); so does a join or
        leave step that does nothing for some of its members."""
        noted: dict[tuple[str, str], Problem] = {}
        follow_clock(self.clock)  # log lines carry the scenario's time, as the transcript does
        try:
            if rehearsed := self._rehearse():
                raise OpsDataError(rehearsed)
            for i, step in enumerate(self.scenario.steps):
                line, col = self._positions[i] if i < len(self._positions) else (1, 1)
                for message in self._no_op_members(step):
                    warning = Problem(self.path, line, col, message, severity="warning")
                    noted[("step", f"{i}:{message}")] = warning
                try:
                    await self._play(step)
                except (UnknownPeer, ValueError) as exc:
                    raise OpsDataError([Problem(self.path, line, col, str(exc))]) from exc
                for refused in self.gateway.take_undeliverable():
                    message = f"{refused.message} (a send made during this step)"
                    noted.setdefault(
                        (refused.kind, refused.ident),
                        Problem(self.path, line, col, message, severity="warning"),
                    )
            self.warnings = list(noted.values())
        finally:
            follow_clock(None)
            self.bot.close()
            self._tmp.cleanup()
        return self.transcript()

    def _no_op_members(self, step: Step) -> list[str]:
        """Why a join or leave step will do nothing for some of its members (already in the
        room; never joined it in this scenario): the author surely meant something else."""
        if step.join is not None:
            room = self.gateway.room(step.join.room)
            already = [m for m in step.join.members if m in room.members]
            if already:
                return [f"{', '.join(already)} already in {room.id}: joining again does nothing"]
        if step.leave is not None:
            room = self.gateway.room(step.leave.room)
            absent = [m for m in step.leave.members if m not in room.members]
            if absent:
                return [
                    f"{', '.join(absent)} not in {room.id} (no earlier join step): "
                    "this leave does nothing"
                ]
        return []

    def _rehearse(self) -> list[Problem]:
        """Every step's people and rooms tried on a throwaway simulator first, so a scenario
        whose eighth step names an unknown room says so (with every other such mistake) before
        anything runs, instead of after seven steps' work is thrown away."""
        dry = SimulatorGateway(self.clock, self.bot.settings.bot.id, self.bot.settings.bot.name)
        for room_id, room in self.gateway.rooms.items():
            dry.add_room(room_id, room.name)
        add_staff_contacts(dry, self.bot)  # a manager answering a ticket needs no contact step
        problems = []
        for i, step in enumerate(self.scenario.steps):
            line, col = self._positions[i] if i < len(self._positions) else (1, 1)
            try:
                if step.webhook is not None:
                    if step.webhook.referrer is not None:
                        dry.person(step.webhook.referrer)
                else:
                    apply_people_step(dry, step)
            except (UnknownPeer, ValueError) as exc:
                problems.append(Problem(self.path, line, col, str(exc)))
            dry.pending_events()  # nobody handles them: only the people and rooms matter here
        return problems

    def transcript(self) -> list[Transcribed]:
        """The bot's actions with the webhook calls in the order they happened."""
        merged: list[Transcribed] = []
        calls = iter(self._webhooks)
        nxt = next(calls, None)
        for i, sent in enumerate([*self.gateway.transcript, None]):
            while nxt is not None and nxt[0] <= i:
                merged.append(nxt[1])
                nxt = next(calls, None)
            if sent is not None:
                merged.append(sent)
        return merged

    async def _play(self, step: Step) -> None:
        g = self.gateway
        if step.webhook is not None:
            await self._webhook(step.webhook)
        else:
            apply_people_step(g, step)
        for event in g.pending_events():
            await self.bot.handle(event)
        if step.advance is not None:
            await self.advance_to(self.clock.now() + step.advance)
        elif step.until is not None:
            target = aware(step.until)
            if target < self.clock.now():
                raise ValueError(
                    f"`until` {target.isoformat()} is before the clock "
                    f"({self.clock.now().isoformat()})"
                )
            await self.advance_to(target)
        else:
            await self.advance_to(self.clock.now())

    async def _webhook(self, hook: WebhookStep) -> None:
        """POST the step's body to the bot's own web app, in process, as a partner would."""
        import json

        import httpx

        from bot.referrals.signatures import HEADER, sign, webhook_secrets
        from bot.web.app import create_app

        data = dict(hook.json_ or {})
        if hook.referrer is not None:
            self.gateway.person(hook.referrer)  # an unknown contact is a located scenario error
            data["referral_code"] = self.bot.referral_codes.issue(hook.referrer, self.clock.now())
        body = (
            hook.body.encode()
            if hook.body is not None
            else json.dumps(data, ensure_ascii=False).encode()
        )
        headers = {"content-type": "application/json", **hook.headers}
        if hook.sign:
            keys = webhook_secrets(self.bot.settings)
            if not keys:
                raise ValueError("`sign: true` needs QUNFU_REFERRAL_WEBHOOK_SECRET")
            headers[HEADER] = sign(keys[0], body, self.clock.now())
        transport = httpx.ASGITransport(app=create_app(self.bot))
        async with httpx.AsyncClient(transport=transport, base_url="http://qunfu.sim") as client:
            response = await client.post(hook.path, content=body, headers=headers)
        call = WebhookCall(self.clock.now(), hook.path, response.status_code)
        self._webhooks.append((len(self.gateway.transcript), call))
        if response.status_code in (404, 405):
            raise ValueError(f"no webhook is served at {hook.path!r}")
        if response.status_code >= 400:
            # The bot rejecting a malformed event is behaviour under test, not a scenario error.
            logger.bind(path=hook.path, status=response.status_code).warning(
                "webhook rejected: {}", response.text[:200]
            )

    async def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, doing all due work at each due instant on the way."""
        for _ in range(_MAX_STEPS_PER_ADVANCE):
            nxt = self.bot.next_due()
            if nxt is None or nxt > target:
                break
            if nxt > self.clock.now():
                self.clock.set(nxt)
            before = len(self.gateway.transcript)
            await self.bot.run_due()
            if (
                nxt <= self.clock.now()
                and self.bot.next_due() == nxt
                and len(self.gateway.transcript) == before
            ):
                # Nothing moved; step a second so a stuck item cannot spin forever.
                self.clock.set(self.clock.now() + timedelta(seconds=1))
        self.clock.set(max(target, self.clock.now()))
        await self.bot.run_due()


def add_staff_contacts(gateway: SimulatorGateway, bot: Qunfu) -> None:
    """Make the people the bot is configured to write to known to the simulator: each
    customer manager's ``contact`` (with the manager's name) and each ``entry.ops_contacts``
    id. A name already given stays (a `contact` step played later renames them as usual)."""
    for manager in bot.ops.managers.values():
        gateway.add_known_contact(manager.contact, manager.name)
    for contact in bot.settings.entry.ops_contacts:
        gateway.add_known_contact(contact)


def apply_people_step(g: SimulatorGateway, step: Step) -> str | None:
    """Apply a step that people perform; return a one-line description, None for clock steps."""
    if step.contact:
        p = g.add_contact(step.contact.id, step.contact.name)
        return f"👤 {p.name or p.id} ({p.id}) is around"
    if step.say:
        s = step.say
        g.say(s.from_, s.text, s.room, s.mentions, kind=s.kind)
        where = f"in {s.room}" if s.room else "to the bot"
        shown = s.text if s.kind == "text" else f"[{s.kind}] {s.text}".rstrip()
        return f"💬 {g.person(s.from_).name} {where}: {shown}"
    if step.location:
        loc = step.location
        g.share_location(loc.from_, loc.lat, loc.lon, loc.crs, loc.room)
        return f"📍 {g.person(loc.from_).name} shares a location {loc.lat}, {loc.lon} ({loc.crs})"
    if step.join:
        for m in step.join.members:
            g.person(m)
        g.join(step.join.room, step.join.members, step.join.inviter)
        names = "、".join(g.person(m).name or m for m in step.join.members)
        return f"➕ {names} joined {g.room(step.join.room).name}"
    if step.leave:
        g.leave(step.leave.room, step.leave.members)
        return f"➖ {'、'.join(step.leave.members)} left {step.leave.room}"
    if step.webhook:
        raise ValueError("webhook steps are played by `qunfu simulate`, not by the live demo")
    return None


def scenario_settings(scenario: Scenario, scenario_path: Path, config: Path | None) -> Settings:
    """The config a scenario runs with: --config wins, then the scenario's, then ./config.yaml."""
    if config is None and scenario.config is not None:
        config = (
            scenario.config
            if scenario.config.is_absolute()
            else scenario_path.parent / scenario.config
        )
    return load_settings(config or Path("config.yaml"))


async def simulate(
    path: Path,
    config: Path | None = None,
    keep_db: Path | None = None,
    warnings: list[Problem] | None = None,
) -> list[Transcribed]:
    """Load and play a scenario; raise OpsDataError with positions on bad input. With
    ``keep_db`` the run's SQLite database is written there and kept (replaced if present).
    The run's warnings (sends nobody could receive) are appended to ``warnings`` if given."""
    scenario, positions = load_scenario(path)
    settings = scenario_settings(scenario, path, config)
    if keep_db is not None:
        keep_db.parent.mkdir(parents=True, exist_ok=True)
        keep_db.unlink(missing_ok=True)
    simulation = Simulation(scenario, path, settings, positions, keep_db)
    transcript = await simulation.run()
    if warnings is not None:
        warnings.extend(simulation.warnings)
    return transcript


def iter_records(transcript: list[Transcribed]) -> Iterator[dict[str, Any]]:
    """Transcript records in time order."""
    for sent in sorted(transcript, key=lambda s: s.at):
        yield action_record(sent)


Kind = Literal["contact", "say", "location", "join", "leave", "advance", "until", "webhook"]
