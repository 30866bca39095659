"""The ``qunfu`` command line. Each command parses arguments and calls a service; no logic here."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from bot.lottery.commands import lottery_app
from bot.opsdata.problems import OpsDataError
from bot.referrals.commands import referrals_app, rewards_app

app = typer.Typer(
    help="群福 Qunfu: operations bot for bank community welfare groups.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
outbox_app = typer.Typer(
    help="The outbox: the audit log, and sends that need a decision.", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")
app.add_typer(referrals_app, name="referrals")
app.add_typer(rewards_app, name="rewards")
app.add_typer(lottery_app, name="lottery")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to config.yaml.")]
DEFAULT_CONFIG = Path("config.yaml")
DemoOpt = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="Read the database the demo run writes (demo.db beside database.url's file) "
        "instead of database.url.",
    ),
]


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    from bot.logs import setup_logging

    setup_logging("DEBUG" if verbose else "WARNING")


def _fail(problems: list) -> None:
    for p in problems:
        typer.echo(str(p), err=False)
    raise typer.Exit(1)


def _day(value: str | None, option: str) -> date | None:
    """The date an option names (YYYY-MM-DD), None when not given; exit 1 with a message."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"{option}: expected a date as YYYY-MM-DD, got {value!r}", err=True)
        raise typer.Exit(1) from None


def _day_start(value: str | None, option: str) -> datetime | None:
    """Midnight in Asia/Shanghai of the day an option names, None when not given."""
    from scheduler.clock import SHANGHAI

    day = _day(value, option)
    return datetime.combine(day, datetime.min.time(), SHANGHAI) if day else None


def _settings(config: Path):  # noqa: ANN202 - Settings, imported lazily for fast --help
    from bot.configfile import load_settings

    try:
        return load_settings(config)
    except OpsDataError as exc:
        _fail(exc.problems)


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    demo: Annotated[
        Path | None, typer.Option(help="Scenario to play at start (simulator).")
    ] = None,
    speed: Annotated[float | None, typer.Option(help="Clock speed-up (simulator).")] = None,
    no_demo: Annotated[
        bool, typer.Option("--no-demo", help="Do not play the demo scenario.")
    ] = False,
) -> None:
    """Start the bot as configured (the shipped config runs the simulator with a demo)."""
    from bot.runner import run_bot

    settings = _settings(config)
    if demo is not None:
        settings.simulator.demo = demo.resolve()
    if no_demo:
        settings.simulator.demo = None
        settings.simulator.speed = 1.0
    if speed is not None:
        settings.simulator.speed = speed
    try:
        asyncio.run(run_bot(settings))
    except OpsDataError as exc:
        _fail(exc.problems)
    except KeyboardInterrupt:
        pass


@app.command()
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")
    ] = False,
) -> None:
    """Validate config, campaigns, data files and templates; print PATH:LINE:COL: message.

    Warnings (valid files that will not do what their author surely meant) are printed as
    ``PATH:LINE:COL: warning: message``; alone they exit 0, or 1 with ``--strict``.
    """
    from bot.configfile import check_all
    from scheduler.clock import RealClock

    problems = check_all(config, RealClock().now())
    for p in problems:
        typer.echo(str(p))
    errors = sum(not p.is_warning for p in problems)
    warnings = len(problems) - errors
    if errors:
        typer.echo(f"{errors} error(s), {warnings} warning(s).", err=True)
        raise typer.Exit(1)
    if warnings:
        typer.echo(f"valid, with {warnings} warning(s).", err=True)
        raise typer.Exit(1 if strict else 0)
    typer.echo("OK: config, campaigns, data files and templates are valid.", err=True)


@app.command()
def preview(
    config: ConfigOpt = DEFAULT_CONFIG,
    group: Annotated[str | None, typer.Option(help="Only this group id.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """What would be sent, when and where, fully rendered, after a one-line summary."""
    from bot.accounts import stored_account_map
    from bot.app import load_ops
    from bot.campaigns import CampaignPlanner, send_summary
    from scheduler.clock import SHANGHAI, RealClock

    settings = _settings(config)
    first = _day(from_, "--from") or RealClock().now().date()
    try:
        # Templates are not test-rendered first: a preview renders what it shows anyway.
        ops = load_ops(settings, check=False)
    except OpsDataError as exc:
        _fail(exc.problems)
    if group is not None and group not in ops.groups:
        typer.echo(f"--group: unknown group {group!r}", err=True)
        raise typer.Exit(1)
    planner = CampaignPlanner(
        ops,
        settings.quiet_hours,
        merchant_radius_m=settings.routing.merchant_radius_m,
        accounts=stored_account_map(settings, ops),
        few_groups=group is not None,
    )
    start = datetime.combine(first, datetime.min.time(), SHANGHAI)
    deliveries = list(planner.plan(start, start + timedelta(days=days), group))
    # The summary comes first; with --json it goes to stderr, so stdout stays one object a line.
    typer.echo(send_summary(deliveries), err=as_json)
    for d in deliveries:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "at": d.send_at.isoformat(),
                        "group": d.group.id,
                        "campaign": d.campaign.id,
                        "account": d.account,
                        "text": d.text,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            typer.echo(
                f"── {d.send_at:%Y-%m-%d %H:%M} {d.group.name} ({d.group.id}) · {d.campaign.id}"
            )
            typer.echo(d.text + "\n")


@app.command()
def explain(
    campaign: Annotated[str, typer.Argument(help="Campaign id.")],
    date_: Annotated[
        str | None, typer.Option("--date", help="The day, YYYY-MM-DD (default: today).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only this group id.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Whether a campaign sends to each group on a day, at which times, and if not, why."""
    from bot.app import load_ops
    from bot.campaigns import CampaignPlanner
    from bot.diagnosis import CampaignDiagnosis, explain_header, format_verdict
    from bot.opsdata.problems import did_you_mean
    from scheduler.clock import SHANGHAI, RealClock

    settings = _settings(config)
    day = _day(date_, "--date") or RealClock().now().astimezone(SHANGHAI).date()
    try:
        ops = load_ops(settings, check=False)  # explains schedules and targets, renders nothing
    except OpsDataError as exc:
        _fail(exc.problems)
    if campaign not in ops.campaigns:
        typer.echo(
            f"unknown campaign {campaign!r}{did_you_mean(campaign, ops.campaigns)}; "
            f"campaigns: {', '.join(sorted(ops.campaigns))}",
            err=True,
        )
        raise typer.Exit(1)
    if group is not None and group not in ops.groups:
        typer.echo(f"--group: unknown group {group!r}{did_you_mean(group, ops.groups)}", err=True)
        raise typer.Exit(1)
    planner = CampaignPlanner(
        ops, settings.quiet_hours, merchant_radius_m=settings.routing.merchant_radius_m
    )
    diagnosis = CampaignDiagnosis(planner)
    chosen = [ops.groups[group]] if group is not None else None
    verdicts = list(diagnosis.explain(ops.campaigns[campaign], day, chosen))
    if as_json:
        for v in verdicts:
            typer.echo(json.dumps(v.as_json(), ensure_ascii=False))
        return
    typer.echo(explain_header(diagnosis, ops.campaigns[campaign], day, verdicts))
    for v in verdicts:
        typer.echo(format_verdict(v))


@app.command()
def route(
    lat: Annotated[float | None, typer.Option(help="Latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude.")] = None,
    crs: Annotated[str, typer.Option(help="gcj02 | wgs84 | bd09")] = "gcj02",
    address: Annotated[
        str | None, typer.Option(help="An address, geocoded as the entry page does.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=50)] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The nearest groups that can take a new member, for a point or an address."""
    from bot.app import load_ops
    from bot.entry.errors import EntryError
    from bot.entry.geocoding import Gazetteer, make_geocoder
    from bot.entry.locating import locate_address
    from bot.routing import GroupIndex

    settings = _settings(config)
    point_given = lat is not None or lon is not None
    if (address is not None and point_given) or (address is None and (lat is None or lon is None)):
        typer.echo("give either --lat and --lon, or --address (not both)", err=True)
        raise typer.Exit(1)
    if crs not in ("gcj02", "wgs84", "bd09"):
        typer.echo(f"--crs: expected gcj02, wgs84 or bd09, got {crs!r}", err=True)
        raise typer.Exit(1)
    try:
        ops = load_ops(settings, check=False)  # routing reads groups only: no template check
    except OpsDataError as exc:
        _fail(exc.problems)
    label = None
    if address is not None:
        geocoder = make_geocoder(settings.entry, Gazetteer(ops.gazetteer))
        try:
            found = locate_address(geocoder, address, crs=settings.entry.geocoder_crs)
        except EntryError as exc:
            typer.echo(f"--address {address!r}: {exc.message}", err=True)
            raise typer.Exit(1) from None
        lat, lon, crs, label = found.lat, found.lon, found.crs, found.label
    assert lat is not None and lon is not None
    counts = _member_counts(settings, ops)
    radius_m = settings.offer_radius_m
    try:
        results, beyond = GroupIndex(ops.groups.values()).offer(
            lat,
            lon,
            crs,
            radius_m=radius_m,
            beyond_m=settings.routing.beyond_m,
            limit=limit or settings.routing.limit,
            member_counts=counts,
        )
    except ValueError as exc:
        typer.echo(f"invalid location: {exc}", err=True)
        raise typer.Exit(1) from None
    rows = [
        {
            "group": r.group.id,
            "name": r.group.name,
            "distance_m": round(r.distance_m),
            "members": r.members,
            "capacity": r.group.capacity,
        }
        for r in results
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if label is not None:
        typer.echo(f"{address} → {label} ({lat:.5f}, {lon:.5f} {crs})")
    if beyond and rows:
        typer.echo(f"no group within {radius_m:.0f} m has room; the nearest beyond it:")
    for i, r in enumerate(rows, 1):
        typer.echo(
            f"{i}. {r['name']} ({r['group']})  {r['distance_m']} m  {r['members']}/{r['capacity']}"
        )
    if not rows:
        reach = settings.routing.beyond_m
        typer.echo(f"no group with room within {reach:.0f} m (routing.beyond_m)")


def _member_counts(settings, ops) -> dict[str, int]:  # noqa: ANN001
    """Live member counts from the database when it exists, else the directory's."""
    from bot.runner import shown_database
    from db.repositories import GroupRepo
    from db.session import make_engine

    url = settings.database.url
    directory = {g.id: g.members for g in ops.groups.values()}
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        typer.echo(
            f"member counts from the groups directory ({shown_database(url)} does not exist yet)",
            err=True,
        )
        return directory
    try:
        engine = make_engine(url)
        counts = GroupRepo(engine).member_counts()
        engine.dispose()
    except Exception:  # no schema yet: the directory's counts are the best we know
        typer.echo(
            f"member counts from the groups directory ({shown_database(url)} has no tables yet)",
            err=True,
        )
        return directory
    typer.echo(f"member counts from {shown_database(url)} (database.url)", err=True)
    return {g.id: counts.get(g.id, g.members) for g in ops.groups.values()}


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    keep_db: Annotated[
        Path | None,
        typer.Option("--keep-db", help="Keep the run's SQLite database at this path."),
    ] = None,
) -> None:
    """Run a scripted scenario on the simulator and print what the bot did.

    A send the simulator could not deliver (to a contact nobody introduced) does not stop the
    run: the transcript is printed as always and each such recipient is one warning line on
    stderr, located at the step during which the send was made."""
    from bot.console import format_action
    from bot.opsdata.problems import Problem
    from bot.simulation import iter_records
    from bot.simulation import simulate as run_scenario

    if not scenario.exists():
        typer.echo(f"{scenario}:1:1: scenario file not found", err=False)
        raise typer.Exit(1)
    warnings: list[Problem] = []
    try:
        transcript = asyncio.run(run_scenario(scenario, config, keep_db, warnings))
    except OpsDataError as exc:
        _fail(exc.problems)
    for record in iter_records(transcript):
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            typer.echo(format_action(record))
    for warning in warnings:
        typer.echo(str(warning), err=True)


@app.command()
def funnel(
    from_: Annotated[str, typer.Option("--from", help="First visit day, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last visit day, YYYY-MM-DD.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    demo: DemoOpt = False,
) -> None:
    """The entry funnel per channel for visits on these days (Asia/Shanghai)."""
    from bot.app import load_ops
    from bot.entry.funnel import EntryFunnel, format_table, total
    from bot.entry.joins import CHAT_CHANNEL, CHAT_CHANNEL_NAME
    from db.entry_repositories import EntryRepo
    from scheduler.clock import RealClock

    settings = _settings(config)
    try:
        first, last = date.fromisoformat(from_), date.fromisoformat(to)
    except ValueError:
        typer.echo(f"--from/--to: expected dates as YYYY-MM-DD, got {from_!r} and {to!r}", err=True)
        raise typer.Exit(1) from None
    if last < first:
        typer.echo(f"--to {last} is before --from {first}", err=True)
        raise typer.Exit(1)
    try:
        ops = load_ops(settings, check=False)  # reads the directory only: no template check
    except OpsDataError as exc:
        _fail(exc.problems)
    engine = _open_database(settings, demo)
    try:
        names = {c.id: c.name for c in ops.channels.values()}
        names.setdefault(CHAT_CHANNEL, CHAT_CHANNEL_NAME)
        rows = EntryFunnel(EntryRepo(engine), RealClock(), settings.entry.retention).report(
            first, last, names
        )
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                    "channels": [r.as_json() for r in rows],
                    "total": total(rows).as_json(),
                },
                ensure_ascii=False,
            )
        )
        return
    typer.echo(f"入群漏斗 {first} ~ {last}（按访问日期）")
    typer.echo(format_table(rows))


def _open_database(settings, demo: bool):  # noqa: ANN001, ANN202 - imported lazily
    """An engine on the database a command reads (:func:`_database_url`), migrated first."""
    from bot.app import _ensure_sqlite_dir
    from db.session import make_engine, upgrade

    url = _database_url(settings, demo)
    _ensure_sqlite_dir(url)
    upgrade(url)
    return make_engine(url)


def _database_url(settings, demo: bool) -> str:  # noqa: ANN001 - Settings, imported lazily
    """The database a command reads, said on stderr with how to read the other one.

    A demo run (``./run.sh``) writes its own fresh database, not database.url; a reader that
    silently picked the other one would show zeros for everything the demo just did.
    """
    from bot.runner import demo_database_url, shown_database

    demo_url = demo_database_url(settings)
    demo_file = Path(demo_url.removeprefix("sqlite:///"))
    if demo:
        if not demo_file.exists():
            typer.echo(
                f"--demo: there is no demo database at {shown_database(demo_url)} yet; "
                "a demo run (./run.sh or qunfu run) writes it",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(
            f"reading {shown_database(demo_url)}, the last demo run's database "
            f"(without --demo: {shown_database(settings.database.url)}, database.url)",
            err=True,
        )
        return demo_url
    hint = (
        f"; the demo run writes {shown_database(demo_url)}: add --demo to read it"
        if demo_file.exists()
        else ""
    )
    typer.echo(f"reading {shown_database(settings.database.url)} (database.url){hint}", err=True)
    return str(settings.database.url)


def _outbox(config: Path, demo: bool = False):  # noqa: ANN202 - Outbox, imported lazily
    from bot.outbox import Outbox
    from scheduler.clock import RealClock

    settings = _settings(config)
    engine = _open_database(settings, demo)
    return Outbox(
        engine, settings.outbox, settings.quiet_hours, RealClock(), settings.bot_accounts()
    )


def _expired_summary(outbox) -> None:  # noqa: ANN001 - Outbox, imported lazily
    """Sends expired past outbox.grace: the total, then per occurrence and account."""
    from collections import Counter

    rows = outbox.expired_rows()
    typer.echo(f"{'expired':<10} {len(rows)} (marketing past outbox.grace, never sent)")
    per = Counter((r.campaign_id or "-", r.occurrence or "-", r.account) for r in rows)
    for (campaign, occurrence, account), n in sorted(per.items(), key=lambda kv: kv[0])[-20:]:
        typer.echo(f"  expired: {n} × {campaign} @ {occurrence} on {account}")


@app.command()
def accounts(
    config: ConfigOpt = DEFAULT_CONFIG,
    demo: DemoOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Each bot account: groups served, sends today against its daily cap, rate, health."""
    from bot.accounts import account_overview
    from bot.app import load_ops
    from scheduler.clock import RealClock

    settings = _settings(config)
    try:
        ops = load_ops(settings, check=False)  # reads the directory only: no template check
    except OpsDataError as exc:
        _fail(exc.problems)
    engine = _open_database(settings, demo)
    try:
        rows = account_overview(settings, ops, engine, RealClock().now())
    finally:
        engine.dispose()
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        cap = "no cap" if row["daily_cap"] is None else str(row["daily_cap"])
        health = row["health"] + (f" ({row['last_error']})" if row["last_error"] else "")
        typer.echo(
            f"{row['account']:<16} groups {row['groups']:>6}  today {row['sent_today']:>6} / "
            f"{cap:<7} {row['rate_per_minute']:g}/min  {health}"
        )


def _record_json(r) -> dict:  # noqa: ANN001
    from bot.events import SentAction
    from bot.simulation import action_record

    at = r.sent_at or r.not_before
    return {
        **action_record(SentAction(at, r.action, account=r.account)),
        "key": r.key,
        "status": r.status,
        "campaign": r.campaign_id,
        "group": r.group_id,
        "attempts": r.attempts,
        "error": r.last_error,
    }


@outbox_app.command("status")
def outbox_status(config: ConfigOpt = DEFAULT_CONFIG, demo: DemoOpt = False) -> None:
    """How many sends are pending, sent, failed or uncertain (the last two with their reasons);
    and how many await a prune."""
    from collections import Counter

    from scheduler.clock import SHANGHAI, RealClock

    outbox = _outbox(config, demo)
    counts = outbox.status_counts()
    for status in ("pending", "sending", "sent", "failed", "uncertain"):
        typer.echo(f"{status:<10} {counts.get(status, 0)}")
    # Permanent faults with their reasons, most frequent first (`outbox list` shows each row).
    for status in ("failed", "uncertain"):
        if not counts.get(status):
            continue
        reasons = Counter(r.last_error or "(no reason)" for r in outbox.with_status(status))
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
            typer.echo(f"  {status}: {n} × {reason}")
    _expired_summary(outbox)
    retention = _settings(config).outbox.retention
    # A dry run counts through the audit log's index; nothing is pruned by looking.
    old = outbox.prune(RealClock().now() - retention, dry_run=True)
    if old.rows:
        typer.echo(
            f"{old.rows} sent rows are older than outbox.retention ({retention.days} days, "
            f"sent before {old.before.astimezone(SHANGHAI):%Y-%m-%d}): "
            "`qunfu outbox prune` removes them (--archive FILE keeps a copy)"
        )


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str, typer.Option(help="pending | sent | failed | uncertain")] = "uncertain",
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    demo: DemoOpt = False,
) -> None:
    """Sends in one status, oldest first (default: uncertain, which wait for a decision)."""
    if status not in ("pending", "sending", "sent", "failed", "uncertain"):
        typer.echo(
            f"--status: expected pending, sent, failed or uncertain, got {status!r}", err=True
        )
        raise typer.Exit(1)
    shown = 0
    for r in _outbox(config, demo).with_status(status):  # type: ignore[arg-type]
        record = _record_json(r)
        shown += 1
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False, default=str))
        else:
            text = (record.get("text") or "").replace("\n", " ")[:40]
            typer.echo(f"{record['key']}  {record.get('to') or record.get('room')}  {text}")
    if not shown and not as_json:  # say so: an empty screen reads like a command that failed
        typer.echo(f"no {status} sends", err=True)


@outbox_app.command("audit")
def outbox_audit(
    since: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    demo: DemoOpt = False,
) -> None:
    """The audit log: every send, with what, to whom, when and from which campaign (JSON lines)."""
    start = _day_start(since, "--since")
    for r in _outbox(config, demo).audit(start):
        typer.echo(json.dumps(_record_json(r), ensure_ascii=False, default=str))


@app.command()
def audit(
    group: Annotated[str | None, typer.Option(help="Only this group's actions.")] = None,
    from_day: Annotated[
        str | None, typer.Option("--from", help="From this day, YYYY-MM-DD (Asia/Shanghai).")
    ] = None,
    to_day: Annotated[
        str | None, typer.Option("--to", help="To this day, inclusive, YYYY-MM-DD.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    demo: DemoOpt = False,
) -> None:
    """Every action of the bot with its reason (campaign, ticket, moderation rule, command...),
    in time order; texts masked and cut short."""
    from bot.audit import audit_entries, day_range

    days = [_day(from_day, "--from"), _day(to_day, "--to")]
    if days[0] and days[1] and days[0] > days[1]:
        typer.echo(f"--from {days[0]} is after --to {days[1]}", err=True)
        raise typer.Exit(1)
    start, end = day_range(days[0], days[1])
    engine = _open_database(_settings(config), demo)
    try:
        if not as_json:
            typer.echo(
                f"{'at':<19}  {'action':<6}  {'to':<28}  {'account':<10}  "
                f"{'reason':<28}  {'status':<9}  text"
            )
        for e in audit_entries(engine, group=group, start=start, end=end):
            if as_json:
                typer.echo(json.dumps(e.as_json(), ensure_ascii=False))
            else:
                typer.echo(
                    f"{e.at:%Y-%m-%d %H:%M:%S}  {e.action:<6}  {e.to:<28}  {e.account:<10}  "
                    f"{e.reason:<28}  {e.status:<9}  {e.text}"
                )
    finally:
        engine.dispose()


@app.command()
def optouts(
    since: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    demo: DemoOpt = False,
) -> None:
    """Every 退订 / 订阅 members sent: who (masked), in or out, when and where (JSON lines)."""
    from bot.optout import MarketingOptOut
    from bot.privacy import mask
    from scheduler.clock import SHANGHAI

    start = _day_start(since, "--since")
    for r in MarketingOptOut(_open_database(_settings(config), demo)).history(start):
        record = {
            "at": r.at.astimezone(SHANGHAI).isoformat(),
            "member": mask(r.person_id),
            "action": "退订" if r.opted_out else "订阅",
            "via": r.via,
            "group": r.group_id,
        }
        typer.echo(json.dumps(record, ensure_ascii=False))


@outbox_app.command("requeue")
def outbox_requeue(key: str, config: ConfigOpt = DEFAULT_CONFIG, demo: DemoOpt = False) -> None:
    """Send an uncertain or failed row again (after checking it did not arrive)."""
    if not _outbox(config, demo).requeue(key):
        typer.echo(f"no uncertain or failed send with key {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"requeued {key}; the running bot sends it shortly", err=True)


@outbox_app.command("prune")
def outbox_prune(
    before: Annotated[
        str | None,
        typer.Option(help="Sent before this day, YYYY-MM-DD; default: now − outbox.retention."),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(help="First append the rows to this JSON-lines file (.gz: gzipped)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Remove (optionally archive) sent rows older than the retention; says what it did."""
    from scheduler.clock import SHANGHAI, RealClock

    retention = _settings(config).outbox.retention
    limit = RealClock().now() - retention
    cutoff = _day_start(before, "--before") or limit
    if cutoff > limit:
        # Pruning forgets idempotency keys: rows inside the retention stay.
        typer.echo(
            f"--before {before}: inside outbox.retention ({retention.days} days); "
            f"the latest allowed is {limit.astimezone(SHANGHAI).date()}",
            err=True,
        )
        raise typer.Exit(1)
    report = _outbox(config).prune(cutoff, archive, dry_run=dry_run)
    when = report.before.astimezone(SHANGHAI).isoformat(timespec="seconds")
    if not report.rows:
        typer.echo(f"nothing to prune: no sent rows before {when}")
        return
    span = f"{report.oldest:%Y-%m-%d} .. {report.newest:%Y-%m-%d}"
    verb = "would prune" if dry_run else "pruned"
    where = f"; archived to {archive}" if archive and not dry_run else ""
    typer.echo(f"{verb} {report.rows} sent rows sent before {when} ({span}){where}")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Apply database migrations up to the newest."""
    from bot.app import _ensure_sqlite_dir
    from bot.runner import shown_database
    from db.session import upgrade

    settings = _settings(config)
    _ensure_sqlite_dir(settings.database.url)
    upgrade(settings.database.url)
    typer.echo(f"database {shown_database(settings.database.url)} is up to date", err=True)


def main() -> None:  # pragma: no cover - console entry
    """Entry point for ``python -m bot``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
