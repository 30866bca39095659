"""``qunfu lottery rounds`` and ``qunfu lottery verify``: typer commands over LotteryAudit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bot.opsdata.problems import OpsDataError

lottery_app = typer.Typer(help="Lottery rounds: list them, verify a draw.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to config.yaml.")]
DEFAULT_CONFIG = Path("config.yaml")


def _audit(config: Path):  # noqa: ANN202 - LotteryAudit, imported lazily for a fast --help
    from bot.app import _ensure_sqlite_dir
    from bot.configfile import load_settings
    from bot.lottery.service import LotteryAudit
    from db.session import make_engine, upgrade

    try:
        settings = load_settings(config)
    except OpsDataError as exc:
        for p in exc.problems:
            typer.echo(str(p))
        raise typer.Exit(1) from None
    url = settings.database.url
    _ensure_sqlite_dir(url)
    upgrade(url)
    return LotteryAudit(make_engine(url))


@lottery_app.command("rounds")
def rounds(campaign: str, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Every round of a lottery campaign: occurrence, draw time, seed, drawn or not (JSON lines)."""
    from scheduler.clock import SHANGHAI

    for r in _audit(config).repo.rounds(campaign):
        record = {
            "campaign": r.campaign_id,
            "occurrence": r.occurrence.astimezone(SHANGHAI).isoformat(),
            "draw_at": r.draw_at.astimezone(SHANGHAI).isoformat(),
            "drawn_at": r.drawn_at.astimezone(SHANGHAI).isoformat() if r.drawn_at else None,
            "keyword": r.keyword,
            "seed": r.seed,
        }
        typer.echo(json.dumps(record, ensure_ascii=False))


@lottery_app.command("verify")
def verify(
    campaign: str,
    occurrence: Annotated[
        str, typer.Argument(help="The announcement's instant (ISO), or its day YYYY-MM-DD.")
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Re-derive the seed and re-run the draw; exit 0 when the stored winners agree, else 1."""
    audit = _audit(config)
    try:
        found = audit.find(campaign, occurrence)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if found is None:
        typer.echo(f"no lottery round of {campaign!r} at {occurrence}", err=True)
        raise typer.Exit(2)
    result = audit.verify(found)
    typer.echo(f"seed {found.seed}")
    for group, winners in sorted(result.winners.items()):
        typer.echo(f"{group}: {', '.join(winners) or '(no winner)'}")
    if result.ok:
        typer.echo("OK: the re-run draw gives the stored winners")
        return
    for line in result.differences:
        typer.echo(f"DIFFERENT: {line}")
    raise typer.Exit(1)
