"""The terminal face of ``qunfu run`` on the simulator: readable actions, typed commands."""

from __future__ import annotations

import shlex
from typing import Any

from rich.console import Console
from rich.markup import escape

from bot.gateways.simulator import SimulatorGateway

HELP = """commands:
  contact ID NAME              a person the bot can see
  join ROOM ID [ID...]         people join a group (ROOM is a group id)
  leave ROOM ID [ID...]        people leave a group
  say ID TEXT                  private message to the bot
  say ID @ROOM TEXT            message in a group, @-mentioning the bot
  loc ID LAT LON [gcj02|wgs84|bd09]   share a location privately
  rooms                        list groups and who is in them (simulated)
  help | quit"""


def format_action(record: dict[str, Any]) -> str:
    """One transcript record as a plain text line (``qunfu simulate`` without --json)."""
    at = record["at"][:16].replace("T", " ")
    if record["action"] == "say":
        mentions = " ".join(f"@{m}" for m in record.get("mentions", []))
        head = f"[{at}] say → {record['to']}" + (f" {mentions}" if mentions else "")
        body = "\n".join("    " + line for line in record["text"].splitlines())
        return f"{head}\n{body}"
    if record["action"] == "webhook":
        return f"[{at}] webhook {record['path']} → {record['status']}"
    return f"[{at}] {record['action']} {record['contact']} → room:{record['room']}"


class TerminalConsole:
    """Prints what the bot does and applies typed commands to the simulator."""

    def __init__(self, gateway: SimulatorGateway, console: Console | None = None) -> None:
        self.gateway = gateway
        self.out = console or Console(highlight=False)

    def show_action(self, record: dict[str, Any]) -> None:
        """Pretty-print one bot action."""
        at = record["at"][11:16]
        if record["action"] == "say":
            to = record["to"]
            kind, _, ident = to.partition(":")
            where = (
                self.gateway.rooms[ident].name
                if kind == "room" and ident in self.gateway.rooms
                else self.gateway.contacts.get(ident, None)
                and self.gateway.contacts[ident].name
                or ident
            )
            icon = "👥" if kind == "room" else "💬"
            contacts = self.gateway.contacts
            mentions = " ".join(
                "@" + (contacts[m].name if m in contacts else m) for m in record.get("mentions", [])
            )
            self.out.print(
                f"[dim]{at}[/dim] [bold cyan]群福助手[/bold cyan] {icon} "
                f"[bold]{escape(str(where))}[/bold] {escape(mentions)}"
            )
            for line in record["text"].splitlines():
                self.out.print("      " + escape(line))
        else:
            self.out.print(
                f"[dim]{at}[/dim] [bold cyan]群福助手[/bold cyan] {record['action']} "
                f"{escape(record['contact'])} → {escape(record['room'])}"
            )

    def show_input(self, at: str, text: str) -> None:
        """Echo something a simulated person did."""
        self.out.print(f"[dim]{at}[/dim] [yellow]{escape(text)}[/yellow]")

    def command(self, line: str) -> str | None:
        """Apply one typed command; return a message to show, or None."""
        try:
            parts = shlex.split(line)
        except ValueError as exc:
            return f"cannot parse: {exc}"
        if not parts:
            return None
        cmd, args = parts[0].lower(), parts[1:]
        g = self.gateway
        try:
            if cmd == "help":
                return HELP
            if cmd == "rooms":
                return "\n".join(
                    f"{r.id}  {r.name}  ({len(r.members)} simulated)" for r in g.rooms.values()
                )
            if cmd == "contact" and len(args) >= 1:
                p = g.add_contact(args[0], " ".join(args[1:]) or args[0])
                return f"contact {p.id} {p.name}"
            if cmd == "join" and len(args) >= 2:
                for m in args[1:]:
                    if m not in g.contacts:
                        g.add_contact(m, m)
                g.join(args[0], args[1:])
                return f"{', '.join(args[1:])} joined {args[0]}"
            if cmd == "leave" and len(args) >= 2:
                g.leave(args[0], args[1:])
                return f"{', '.join(args[1:])} left {args[0]}"
            if cmd == "say" and len(args) >= 2:
                if args[0] not in g.contacts:
                    g.add_contact(args[0], args[0])
                if args[1].startswith("@"):
                    g.say(args[0], " ".join(args[2:]), args[1][1:], ["bot"])
                else:
                    g.say(args[0], " ".join(args[1:]))
                return None
            if cmd in ("loc", "location") and len(args) >= 3:
                if args[0] not in g.contacts:
                    g.add_contact(args[0], args[0])
                crs = args[3] if len(args) > 3 else "gcj02"
                if crs not in ("gcj02", "wgs84", "bd09"):
                    return f"unknown crs {crs!r}: use gcj02, wgs84 or bd09"
                g.share_location(args[0], float(args[1]), float(args[2]), crs)  # type: ignore[arg-type]
                return None
        except ValueError as exc:
            return f"rejected: {exc}"
        return f"unknown or incomplete command: {line.strip()!r} (type help)"
