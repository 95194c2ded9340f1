"""The demo team's file (scripts/demo_team.toml), read and checked, and its history placed in
time: what scripts/demo writes."""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from letschat_app.state.models import expand_shortcodes
from letschat_protocol.emoji import EMOJI

TEAM_FILE = Path(__file__).resolve().parent / "demo_team.toml"
WHEN = re.compile(
    r"^-(?:(?P<days>\d+)d (?P<clock>\d{1,2}:\d{2})|(?P<hours>\d+)h|(?P<minutes>\d+)m)$"
)
# The lines of a thread follow one another this many minutes apart (chosen per line, the same
# on every run).
LINE_GAP_MINUTES = (1, 4)


class DemoError(Exception):
    """What stops the demo, said to the person who ran it (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    name: str


@dataclass(frozen=True, slots=True)
class Place:
    """A conversation: a group (with a name) or a direct one (two members, no name)."""

    key: str
    members: tuple[str, ...]
    name: str | None = None
    public: bool = False
    creator: str | None = None
    description: str = ""

    @property
    def label(self) -> str:
        return self.name or " & ".join(self.members)


@dataclass(frozen=True, slots=True)
class Line:
    sender: str
    text: str
    reply_to: int | None = None  # The index of the answered line in its thread.
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (emoji, who)


@dataclass(frozen=True, slots=True)
class Thread:
    place: str
    when: str
    lines: tuple[Line, ...]
    unread: bool = False


@dataclass(frozen=True, slots=True)
class Team:
    password: str
    people: tuple[Person, ...]
    places: tuple[Place, ...]
    threads: tuple[Thread, ...]

    @property
    def message_count(self) -> int:
        return sum(len(thread.lines) for thread in self.threads)


def load_team(path: Path = TEAM_FILE) -> Team:
    """Read and check the team file; a mistake names its thread or line."""
    raw = tomllib.loads(path.read_text())
    people = tuple(Person(p["username"], p["name"]) for p in raw["people"])
    usernames = {p.username for p in people}
    places = tuple(_place(entry, usernames) for entry in raw["conversations"])
    keys = {place.key: place for place in places}
    threads = tuple(_thread(entry, keys) for entry in raw["threads"])
    return Team(raw["password"], people, places, threads)


def _place(entry: dict[str, Any], usernames: set[str]) -> Place:
    members = tuple(entry["members"])
    if unknown := set(members) - usernames:
        raise DemoError(f"conversation {entry['key']!r}: nobody is called {sorted(unknown)}")
    if "name" not in entry and len(members) != 2:
        raise DemoError(f"conversation {entry['key']!r}: a direct conversation has two members")
    if "name" in entry and entry.get("creator") not in members:
        raise DemoError(f"conversation {entry['key']!r}: its creator must be a member")
    return Place(
        key=entry["key"],
        members=members,
        name=entry.get("name"),
        public=bool(entry.get("public", False)),
        creator=entry.get("creator"),
        description=entry.get("description", ""),
    )


def _thread(entry: dict[str, Any], places: dict[str, Place]) -> Thread:
    where = f"thread {entry.get('in')!r} at {entry.get('when')!r}"
    place = places.get(entry["in"])
    if place is None:
        raise DemoError(f"{where}: no conversation has that key")
    if not WHEN.match(entry["when"]):
        raise DemoError(f"{where}: `when` is like '-3d 09:12', '-2h' or '-40m'")
    replies = dict(entry.get("replies", []))
    reactions: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    for index, name, *who in entry.get("reactions", []):
        if name not in EMOJI:
            raise DemoError(f"{where}: no emoji is called :{name}:")
        if unknown := set(who) - set(place.members):
            raise DemoError(f"{where}: {sorted(unknown)} can't react, not being members")
        reactions.setdefault(index, []).append((EMOJI[name], tuple(who)))
    lines = []
    for index, text in enumerate(entry["lines"]):
        sender, sep, body = text.partition(": ")
        if not sep or sender not in place.members:
            raise DemoError(f"{where}, line {index}: not 'member: text' ({text[:40]!r})")
        answered = replies.get(index)
        if answered is not None and not 0 <= answered < index:
            raise DemoError(f"{where}, line {index}: a reply answers an earlier line")
        # As the web app's composer sends it: `:tada:` as 🎉.
        text = expand_shortcodes(body)
        lines.append(Line(sender, text, answered, tuple(reactions.get(index, ()))))
    if unknown_lines := (set(replies) | set(reactions)) - set(range(len(lines))):
        raise DemoError(f"{where}: no lines {sorted(unknown_lines)}")
    return Thread(place.key, entry["when"], tuple(lines), bool(entry.get("unread", False)))


def thread_start(when: str, now: datetime) -> datetime:
    """When a thread starts: '-3d 09:12' is three days before `now`'s day at 09:12 (in `now`'s
    time zone), '-2h' and '-40m' are that long before `now`."""
    match = WHEN.match(when)
    if match is None:
        raise DemoError(f"`when` is like '-3d 09:12', '-2h' or '-40m', not {when!r}")
    if match["clock"]:
        hour, minute = (int(part) for part in match["clock"].split(":"))
        day = (now - timedelta(days=int(match["days"]))).date()
        # That day's wall clock where this runs, summer time or not (`now`'s offset may differ).
        wall = datetime(day.year, day.month, day.day, hour, minute)
        return wall.astimezone().astimezone(now.tzinfo)
    if match["hours"]:
        return now - timedelta(hours=int(match["hours"]))
    return now - timedelta(minutes=int(match["minutes"]))


@dataclass(slots=True)
class Timed:
    thread: Thread
    times: list[datetime]  # One per line.


def schedule(team: Team, now: datetime) -> dict[str, list[Timed]]:
    """Each conversation's threads in order, with a time for every line: in thread order, never
    two lines at once, never after `now`."""
    by_place: dict[str, list[Timed]] = {place.key: [] for place in team.places}
    for thread in sorted(team.threads, key=lambda t: thread_start(t.when, now)):
        gaps = random.Random(f"{thread.place} {thread.when}")  # noqa: S311 - not for secrets
        at = thread_start(thread.when, now)
        times = []
        for _ in thread.lines:
            times.append(at)
            at += timedelta(minutes=gaps.randint(*LINE_GAP_MINUTES), seconds=gaps.randint(0, 59))
        by_place[thread.place].append(Timed(thread, times))
    for timed in by_place.values():
        previous: datetime | None = None
        for entry in timed:
            for index, at in enumerate(entry.times):
                if previous is not None and at <= previous:
                    at = previous + timedelta(seconds=30)
                entry.times[index] = previous = min(at, now)
    return by_place
