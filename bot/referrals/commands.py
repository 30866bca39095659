"""``qunfu referrals ...`` and ``qunfu rewards ...``: typer commands that call the services."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from bot.opsdata.problems import OpsDataError

referrals_app = typer.Typer(help="Referral events from partners.", no_args_is_help=True)
rewards_app = typer.Typer(
    help="Referral rewards: review held ones, export, push, confirm.", no_args_is_help=True
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to config.yaml.")]
DEFAULT_CONFIG = Path("config.yaml")
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who decides (default: $USER).", show_default=False)
]


@dataclass
class _Services:
    intake: object
    ledger: object
    fulfilment: object


def _open(config: Path) -> _Services:
    """The referral services on the configured database, without starting the bot."""
    from bot.app import _ensure_sqlite_dir, load_ops
    from bot.configfile import load_settings
    from bot.entry.referral_codes import ReferralCodes, referral_secret
    from bot.referrals.fulfilment import RewardFulfilment
    from bot.referrals.intake import ReferralIntake
    from bot.referrals.ledger import ReferralLedger
    from bot.referrals.rules import Burst
    from bot.referrals.signatures import push_secret, webhook_secrets
    from db.entry_repositories import ReferralCodeRepo
    from db.session import make_engine, upgrade
    from scheduler.clock import RealClock

    try:
        settings = load_settings(config)
        ops = load_ops(settings)
    except OpsDataError as exc:
        for p in exc.problems:
            typer.echo(str(p))
        raise typer.Exit(1) from None
    url = settings.database.url
    _ensure_sqlite_dir(url)
    upgrade(url)
    engine = make_engine(url)
    clock = RealClock()
    r = settings.referral
    ledger = ReferralLedger(
        engine, lambda: ops.referral, clock, Burst(r.burst_count, r.burst_window)
    )
    codes = ReferralCodes(ReferralCodeRepo(engine), referral_secret(settings))
    intake = ReferralIntake(ledger, codes, lambda: webhook_secrets(settings), clock, r.tolerance)
    fulfilment = RewardFulfilment(
        engine,
        clock,
        settings.outbox,
        push_url=r.push_url,
        push_key=push_secret(settings),
        timeout=r.push_timeout,
    )
    return _Services(intake, ledger, fulfilment)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"{option}: expected a date as YYYY-MM-DD, got {value!r}", err=True)
        raise typer.Exit(1) from None


@referrals_app.command("import")
def import_events(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: event_id,type,referral_code,applicant,occurred_at[,referrer_applicant]"
        ),
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Take partner events from a CSV file; bad rows are listed, the rest imported."""
    from bot.referrals.intake import ReferralIntake

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"{file}:1:1: cannot read: {exc}")
        raise typer.Exit(1) from None
    intake = _open(config).intake
    assert isinstance(intake, ReferralIntake)
    report = intake.import_csv(text)
    for line, reason in report.bad:
        typer.echo(f"{file}:{line}: {reason}")
    new = [r for r in report.taken if not r.duplicate]
    counted = sum(1 for r in new if r.outcome == "counted")
    granted = sum(len(r.granted) for r in new)
    typer.echo(
        f"{len(new)} imported ({counted} counted, {granted} tier(s) granted), "
        f"{len(report.taken) - len(new)} already known, {len(report.bad)} bad row(s)",
        err=True,
    )
    if report.bad:
        raise typer.Exit(1)


@rewards_app.command("review")
def review(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Rewards held for review (a burst of friends), oldest first."""
    from bot.referrals.ledger import ReferralLedger
    from scheduler.clock import SHANGHAI

    ledger = _open(config).ledger
    assert isinstance(ledger, ReferralLedger)
    held = ledger.held()
    for r in held:
        reached = r.reached_at.astimezone(SHANGHAI).isoformat()
        if as_json:
            row = {
                "id": r.id,
                "referrer": r.referrer_id,
                "tier": r.tier,
                "reward": r.reward,
                "reached_at": reached,
                "reason": r.held_reason,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(
                f"#{r.id}  {r.referrer_id}  tier {r.tier}: {r.reward}  "
                f"reached {reached[:16]}  — {r.held_reason}"
            )
    if not held and not as_json:
        typer.echo("no reward is held for review", err=True)


def _decide(config: Path, reward_id: int, approve: bool, by: str | None, why: str) -> None:
    from bot.referrals.ledger import LedgerError, ReferralLedger

    ledger = _open(config).ledger
    assert isinstance(ledger, ReferralLedger)
    try:
        row = (
            ledger.approve(reward_id, _who(by), why)
            if approve
            else ledger.reject(reward_id, _who(by), why)
        )
    except LedgerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"reward #{row.id} is now {row.status} (by {row.decided_by})")


@rewards_app.command("approve")
def approve(
    reward_id: Annotated[int, typer.Argument(help="Reward id from `qunfu rewards review`.")],
    by: ByOpt = None,
    note: Annotated[str, typer.Option("--note", help="Why, for the record.")] = "",
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Release a held reward for payment."""
    _decide(config, reward_id, True, by, note)


@rewards_app.command("reject")
def reject(
    reward_id: Annotated[int, typer.Argument(help="Reward id.")],
    why: Annotated[str, typer.Option("--why", help="The reason (required).")],
    by: ByOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Refuse a held or pending reward for good."""
    _decide(config, reward_id, False, by, why)


@rewards_app.command("export")
def export(
    from_: Annotated[str, typer.Option("--from", help="First day reached, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last day reached, YYYY-MM-DD.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV file (default: stdout).")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only these statuses (repeatable).")
    ] = None,
    mark_sent: Annotated[
        bool, typer.Option("--mark-sent", help="Mark the exported pending rewards as sent.")
    ] = False,
    by: ByOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Rewards reached between two days (Asia/Shanghai), as CSV for the bank."""
    import csv
    import io

    from bot.referrals.fulfilment import RewardFulfilment

    first, last = _day(from_, "--from"), _day(to, "--to")
    if last < first:
        typer.echo("--to is before --from", err=True)
        raise typer.Exit(1)
    fulfilment = _open(config).fulfilment
    assert isinstance(fulfilment, RewardFulfilment)
    text = fulfilment.export(first, last, status or None)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    typer.echo(f"{len(rows)} reward(s) exported", err=True)
    if mark_sent:
        ids = [int(r["reward_id"]) for r in rows if r["status"] == "pending"]
        moved = fulfilment.mark(ids, "sent", _who(by), f"exported {first}..{last}")
        typer.echo(f"{len(moved)} marked sent", err=True)


@rewards_app.command("push")
def push(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """POST due pending rewards to referral.push_url (signed); 2xx marks them sent."""
    from bot.referrals.fulfilment import RewardFulfilment

    fulfilment = _open(config).fulfilment
    assert isinstance(fulfilment, RewardFulfilment)
    if not fulfilment.push_url:
        typer.echo("referral.push_url is not configured", err=True)
        raise typer.Exit(1)
    result = fulfilment.push_due()
    typer.echo(
        f"{len(result.sent)} sent, {len(result.failed)} failed (retried later), "
        f"{len(result.refused)} refused (permanent, see `qunfu rewards history ID`)",
        err=True,
    )
    if result.failed or result.refused:
        raise typer.Exit(1)


@rewards_app.command("confirm")
def confirm(
    reward_ids: Annotated[list[int], typer.Argument(help="Reward ids the bank confirmed paid.")],
    by: ByOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Record that the bank paid these rewards."""
    from bot.referrals.fulfilment import RewardFulfilment

    fulfilment = _open(config).fulfilment
    assert isinstance(fulfilment, RewardFulfilment)
    moved = fulfilment.mark(reward_ids, "confirmed", _who(by))
    for rid in reward_ids:
        typer.echo(f"#{rid}: {'confirmed' if rid in moved else 'not pending or sent, unchanged'}")
    if len(moved) != len(reward_ids):
        raise typer.Exit(1)


@rewards_app.command("history")
def history(
    reward_id: Annotated[int, typer.Argument(help="Reward id.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Every status change of a reward: when, who, from, to, why."""
    from bot.referrals.fulfilment import RewardFulfilment
    from scheduler.clock import SHANGHAI

    fulfilment = _open(config).fulfilment
    assert isinstance(fulfilment, RewardFulfilment)
    rows = fulfilment.queries.history(reward_id)
    if not rows:
        typer.echo(f"no history for reward #{reward_id}", err=True)
        raise typer.Exit(1)
    for h in rows:
        at = h["at"].astimezone(SHANGHAI).isoformat()[:19]
        typer.echo(f"{at}  {h['by']}: {h['from_status'] or '-'} → {h['to_status']}  {h['note']}")
