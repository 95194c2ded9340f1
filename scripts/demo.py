"""Fill the embedded database with a demo team: six people, two public groups, a private one,
direct conversations and a week of history, some of it unread. Prints the logins.

Everything is written through the services' own store code (users, conversations, messages,
reactions, replies, read markers), dated over the last week (`writing_at`). It is idempotent:
people and conversations that exist are kept, and a conversation that already has messages
gets no more. It fills only the embedded database (scripts/run's SecantusDB, running or not)
unless --force is given for the database LETSCHAT_MONGODB_URL names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend_services.core.config import AuthSettings  # noqa: E402
from backend_services.core.schemas import User  # noqa: E402
from backend_services.core.security import hash_password  # noqa: E402
from backend_services.core.store import Store  # noqa: E402
from backend_services.core.store.database import writing_at  # noqa: E402
from letschat_app.state.models import expand_shortcodes  # noqa: E402
from letschat_protocol.emoji import EMOJI  # noqa: E402

TEAM_FILE = ROOT / "scripts" / "demo_team.toml"
DEFAULT_MONGODB_PORT = "27017"  # scripts/run's LETSCHAT_EMBEDDED_MONGODB_PORT default
START_TIMEOUT_SECONDS = 60.0
WHEN = re.compile(
    r"^-(?:(?P<days>\d+)d (?P<clock>\d{1,2}:\d{2})|(?P<hours>\d+)h|(?P<minutes>\d+)m)$"
)
# The lines of a thread follow one another this many minutes apart (chosen per line, the same
# on every run).
LINE_GAP_MINUTES = (1, 4)


class DemoError(Exception):
    """What stops the demo, said to the person who ran it (exit status 2)."""


# --- the team file ---------------------------------------------------------------------------


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
        day = now - timedelta(days=int(match["days"]))
        return day.replace(hour=hour, minute=minute, second=0, microsecond=0)
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


# --- writing it ------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    people_created: int = 0
    conversations_created: int = 0
    messages_written: int = 0
    conversations_kept: list[str] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)  # username -> unread messages


async def seed(store: Store, team: Team, *, now: datetime, bcrypt_rounds: int = 12) -> Report:
    """Write the team into `store` (prepared); what exists is kept."""
    report = Report()
    week_start = min(thread_start(t.when, now) for t in team.threads) - timedelta(days=1)
    users = await _people(store, team, week_start, bcrypt_rounds, report)
    timeline = schedule(team, now)
    for place in team.places:
        conversation_id = await _conversation(store, place, users, week_start, report)
        if (await store.states.allocated([conversation_id])).get(conversation_id, 0) > 0:
            report.conversations_kept.append(place.name or " & ".join(place.members))
            continue
        await _history(store, place, conversation_id, timeline[place.key], users, report)
    last_said: dict[str, datetime] = {}
    for timed in timeline.values():
        for entry in timed:
            for line, at in zip(entry.thread.lines, entry.times, strict=True):
                last_said[line.sender] = max(at, last_said.get(line.sender, at))
    for username, at in last_said.items():  # "Last seen today at 14:05" for the team.
        await store.users.mark_seen([users[username].id], at + timedelta(minutes=5))
    return report


async def _people(
    store: Store, team: Team, created: datetime, rounds: int, report: Report
) -> dict[str, User]:
    users: dict[str, User] = {}
    password_hash: str | None = None
    for person in team.people:
        found = await store.users.get_with_hash(person.username)
        if found is not None:
            users[person.username] = found[0]
            continue
        if password_hash is None:  # bcrypt: one hash (with its salt) serves the whole team.
            password_hash = await asyncio.to_thread(hash_password, team.password, rounds)
        with writing_at(created):
            users[person.username] = await store.users.create(
                person.username, password_hash, person.name
            )
        report.people_created += 1
    return users


async def _conversation(
    store: Store, place: Place, users: dict[str, User], created: datetime, report: Report
) -> str:
    ids = [users[username].id for username in place.members]
    with writing_at(created):
        if place.name is None:
            doc, new = await store.conversations.open_direct(ids[0], ids[1])
            report.conversations_created += int(new)
            return str(doc["_id"])
        assert place.creator is not None  # noqa: S101 - load_team checked it
        creator = users[place.creator].id
        for existing in await store.conversations.places_for(creator):
            if existing["kind"] == "group" and existing.get("name") == place.name:
                return str(existing["_id"])
        doc = await store.conversations.create_group(
            creator, place.name, [i for i in ids if i != creator], is_public=place.public
        )
        if place.description:
            await store.conversations.update_group(
                doc["_id"], creator, name=None, description=place.description
            )
    report.conversations_created += 1
    return str(doc["_id"])


async def _history(
    store: Store,
    place: Place,
    conversation_id: str,
    timed: list[Timed],
    users: dict[str, User],
    report: Report,
) -> None:
    read_through = 0  # The last seq before the first unread thread.
    written: list[tuple[int, str]] = []  # (seq, sender)
    for entry in timed:
        sent: list[str] = []  # Message ids of this thread, by line.
        for line, at in zip(entry.thread.lines, entry.times, strict=True):
            reply_to = sent[line.reply_to] if line.reply_to is not None else None
            with writing_at(at):
                message, _ = await store.messages.append(
                    conversation_id,
                    users[line.sender],
                    line.text,
                    f"demo-{place.key.replace('+', '.')}-{len(written) + 1}",
                    known_member=True,
                    reply_to=reply_to,
                )
            with writing_at(at + timedelta(minutes=2)):
                for emoji, who in line.reactions:
                    for username in who:
                        await store.changes.react(
                            conversation_id, users[username].id, message.id, emoji, add=True
                        )
            sent.append(message.id)
            written.append((message.seq, line.sender))
            if not entry.thread.unread:
                read_through = message.seq
    report.messages_written += len(written)
    for username in place.members:
        # A sender has read up to what they sent (`append` moved their marker).
        marker = max([read_through, *(seq for seq, sender in written if sender == username)])
        await store.reads.advance(conversation_id, users[username].id, marker)
        unread = sum(1 for seq, sender in written if seq > marker and sender != username)
        if unread:
            report.unread[username] = report.unread.get(username, 0) + unread


# --- where --------------------------------------------------------------------------------------


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedServer:
    """scripts/run's SecantusDB: the running one, or one started on its data for the seeding."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = int(env.get("LETSCHAT_EMBEDDED_MONGODB_PORT") or DEFAULT_MONGODB_PORT)
        self.storage = Path(env.get("LETSCHAT_DATA_DIR") or ROOT / ".data") / "secantus"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, port: int) -> str:
        return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"

    def __enter__(self) -> str:
        if _listening(self.port):  # scripts/run is up: fill the server it started.
            return self.url(self.port)
        self.storage.parent.mkdir(parents=True, exist_ok=True)
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        command = [sys.executable, "-m", "backend_services.embedded_mongo", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--storage-path", str(self.storage)]
        command += ["--log-level", "WARNING"]
        self.process = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _listening(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise DemoError(f"the embedded database did not start (data: {self.storage})")
            time.sleep(0.1)
        return self.url(port)

    def __exit__(self, *_: object) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # As Ctrl+C in scripts/run: it saves and stops.
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def _is_embedded(store: Store) -> bool:
    info = await store.database.db.client.admin.command("buildInfo")
    return "secantusVersion" in info


async def _run(url: str, *, force: bool, database: str, team: Team) -> Report:
    store = Store.connect(url, database)
    try:
        await store.prepare()
        if not force and not await _is_embedded(store):
            raise DemoError(
                f"{url} is not the embedded SecantusDB (something else listens on its port); "
                "pass --force to fill it anyway"
            )
        rounds = AuthSettings.model_fields["bcrypt_rounds"].default
        return await seed(store, team, now=datetime.now().astimezone(), bcrypt_rounds=rounds)
    finally:
        await store.close()


def _print(team: Team, report: Report, env: dict[str, str]) -> None:
    if report.messages_written or report.people_created:
        print(
            f"The demo team is in: {report.people_created} people, "
            f"{report.conversations_created} conversations and "
            f"{report.messages_written} messages written."
        )
    else:
        print("The demo team was already there; nothing was changed.")
    if report.conversations_kept and report.messages_written:
        print(f"Kept as they were (they had messages): {', '.join(report.conversations_kept)}.")
    port = env.get("LETSCHAT_FRONTEND_PORT") or "3000"
    print(f"\nLog in at http://localhost:{port} with password {team.password!r} as:")
    for person in team.people:
        unread = report.unread.get(person.username)
        note = f"  ({unread} unread)" if unread else ""
        print(f"  {person.username:<8} {person.name:<14}{note}")
    print("\nTwo people at once: a second browser, or a private window, for the second login.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--force",
        action="store_true",
        help="fill the database LETSCHAT_MONGODB_URL names (or a non-embedded one on the port)",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    database = env.get("LETSCHAT_MONGODB_DB") or "letschat"
    try:
        team = load_team()
        url = env.get("LETSCHAT_MONGODB_URL", "").strip()
        if url:
            if not args.force:
                raise DemoError(
                    "LETSCHAT_MONGODB_URL is set, so this is not the embedded database: "
                    "scripts/demo leaves it alone unless you pass --force"
                )
            report = asyncio.run(_run(url, force=True, database=database, team=team))
        else:
            with EmbeddedServer(env) as embedded_url:
                report = asyncio.run(
                    _run(embedded_url, force=args.force, database=database, team=team)
                )
    except DemoError as exc:
        print(f"scripts/demo: {exc}", file=sys.stderr)
        return 2
    _print(team, report, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
