"""The terminal face of ``qunfu run`` on the simulator: readable actions, typed commands."""

from __future__ import annotations

import shlex
from typing import Any

from rich.console import Console
from rich.markup import escape

from bot.gateways.simulator import SimRoom, SimulatorGateway, UnknownPeer

HELP = """commands:
  contact ID NAME              a person the bot can see (needed before they act)
  join ROOM ID [ID...]         people join a group (ROOM is a group id)
  leave ROOM ID [ID...]        people leave a group
  say ID TEXT                  private message to the bot
  say ID @ROOM TEXT            message in a group, @-mentioning the bot
  loc ID LAT LON [gcj02|wgs84|bd09]   share a location privately
  rooms                        every group and who is in it (simulated)
  who [ROOM]                   who is in one group, or in every group that has someone
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
        try:
            return self._apply(cmd, args, line)
        except ValueError as exc:  # UnknownPeer included: an unknown room, not a member, ...
            return f"rejected: {exc}"

    def _apply(self, cmd: str, args: list[str], line: str) -> str | None:
        g = self.gateway
        if cmd == "help":
            return HELP
        if cmd == "rooms" and not args:
            return "\n".join(self._room_line(r) for r in g.rooms.values()) or "no groups"
        if cmd == "who":
            return self._who(args)
        if cmd == "contact" and len(args) >= 1:
            if args[0] == g.bot_id:
                return f"rejected: {args[0]!r} is the bot itself; choose another id"
            p = g.add_contact(args[0], " ".join(args[1:]) or args[0])
            return f"contact {p.id} {p.name}"
        if cmd == "join" and len(args) >= 2:
            return self._join(args[0], _unique(args[1:]))
        if cmd == "leave" and len(args) >= 2:
            return self._leave(args[0], _unique(args[1:]))
        if cmd == "say" and len(args) >= 2:
            if unknown := self._unknown([args[0]]):
                return unknown
            if args[1].startswith("@"):
                g.say(args[0], " ".join(args[2:]), args[1][1:], ["bot"])
            else:
                g.say(args[0], " ".join(args[1:]))
            return None
        if cmd in ("loc", "location") and len(args) >= 3:
            if unknown := self._unknown([args[0]]):
                return unknown
            try:
                lat, lon = float(args[1]), float(args[2])
            except ValueError:
                return f"rejected: LAT and LON must be numbers, got {args[1]!r} {args[2]!r}"
            crs = args[3] if len(args) > 3 else "gcj02"
            if crs not in ("gcj02", "wgs84", "bd09"):
                return f"unknown crs {crs!r}: use gcj02, wgs84 or bd09"
            g.share_location(args[0], lat, lon, crs)  # type: ignore[arg-type]
            return None
        return f"unknown or incomplete command: {line.strip()!r} (type help)"

    def _unknown(self, ids: list[str]) -> str | None:
        """A rejection naming the ids nobody added yet, with the command that adds one."""
        missing = [i for i in ids if i not in self.gateway.contacts or i == self.gateway.bot_id]
        if not missing:
            return None
        names = ", ".join(repr(i) for i in missing)
        return (
            f"rejected: unknown contact {names}: add it first with "
            f"`contact {missing[0]} NAME` (nothing was done)"
        )

    def _room(self, room_id: str) -> SimRoom:
        try:
            return self.gateway.room(room_id)
        except UnknownPeer as exc:
            raise UnknownPeer(f"{exc} (type `rooms` to list the groups)") from None

    def _join(self, room_id: str, ids: list[str]) -> str:
        room = self._room(room_id)
        if unknown := self._unknown(ids):
            return unknown
        already = [i for i in ids if i in room.members]
        if len(already) == len(ids):
            return f"rejected: {', '.join(already)} already in {room.id}; nobody joined"
        event = self.gateway.join(room.id, ids)
        said = f"{', '.join(p.id for p in event.members)} joined {room.id}"
        return said + (f" ({', '.join(already)} already in it, skipped)" if already else "")

    def _leave(self, room_id: str, ids: list[str]) -> str:
        room = self._room(room_id)
        absent = [i for i in ids if i not in room.members]
        if len(absent) == len(ids):
            return (
                f"rejected: {', '.join(absent)} not in {room.id}; nobody left "
                f"(`who {room.id}` shows who is)"
            )
        event = self.gateway.leave(room.id, ids)
        said = f"{', '.join(event.member_ids)} left {room.id}"
        return said + (f" ({', '.join(absent)} not in it, skipped)" if absent else "")

    def _who(self, args: list[str]) -> str:
        if args:
            return "\n".join(self._room_line(self._room(a)) for a in args)
        # Rooms restored lazily are not read here: at bank scale that is a million people.
        rooms = self.gateway.rooms.values()
        occupied = [r for r in rooms if r.loaded and r.members]
        unread = sum(1 for r in rooms if not r.loaded)
        lines = [self._room_line(r) for r in occupied]
        if unread:
            lines.append(f"({unread} groups restored from the database: `who ROOM` shows one)")
        return "\n".join(lines) or "every group is empty"

    def _room_line(self, room: SimRoom) -> str:
        contacts = self.gateway.contacts
        people = ", ".join(
            f"{contacts[m].name} ({m})" if m in contacts else m for m in sorted(room.members)
        )
        return f"{room.id}  {room.name}  {len(room.members)}: {people or '—'}"


def _unique(ids: list[str]) -> list[str]:
    """The ids in the order typed, each once (`join r u1 u1` is one join)."""
    return list(dict.fromkeys(ids))
