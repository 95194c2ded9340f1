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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend_services.core.config import AuthSettings  # noqa: E402
from backend_services.core.schemas import User  # noqa: E402
from backend_services.core.security import hash_password  # noqa: E402
from backend_services.core.store import Store  # noqa: E402
from backend_services.core.store.database import writing_at  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from demo_team import (  # noqa: E402
    DemoError,
    Place,
    Team,
    Timed,
    load_team,
    schedule,
    thread_start,
)

DEFAULT_MONGODB_PORT = "27017"  # scripts/run's LETSCHAT_EMBEDDED_MONGODB_PORT default
START_TIMEOUT_SECONDS = 60.0
# How long the server on the embedded port has to say what it is.
IDENTIFY_TIMEOUT_MS = 5000
# What SecantusDB (WiredTiger) says when another server holds the same data folder.
DATA_IN_USE = ("already being managed by another process", "Resource busy")


@dataclass(slots=True)
class Report:
    people_created: int = 0
    conversations_created: int = 0
    messages_written: int = 0
    conversations_kept: list[str] = field(default_factory=list)
    # Conversations an earlier run stopped writing part way (it was interrupted).
    conversations_incomplete: list[str] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)  # username -> unread messages


async def seed(store: Store, team: Team, *, now: datetime, bcrypt_rounds: int = 12) -> Report:
    """Write the team into `store` (prepared); what exists is kept."""
    report = Report()
    week_start = min(thread_start(t.when, now) for t in team.threads) - timedelta(days=1)
    users = await _people(store, team, week_start, bcrypt_rounds, report)
    timeline = schedule(team, now)
    for place in team.places:
        conversation_id = await _conversation(store, place, users, week_start, report)
        written = (await store.states.allocated([conversation_id])).get(conversation_id, 0)
        planned = sum(len(entry.thread.lines) for entry in timeline[place.key])
        if written == 0:
            await _history(store, place, conversation_id, timeline[place.key], users, report)
        elif written < planned:  # Seqs only grow: an earlier run stopped part way.
            report.conversations_incomplete.append(place.label)
        else:
            report.conversations_kept.append(place.label)
    if not report.messages_written:
        return report
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
        found = [
            existing
            for existing in await store.conversations.places_for(creator)
            if existing["kind"] == "group" and existing.get("name") == place.name
        ]
        if found:
            doc = await store.conversations.get_for_member(found[0]["_id"], creator)
        else:
            doc = await store.conversations.create_group(
                creator, place.name, [i for i in ids if i != creator], is_public=place.public
            )
            report.conversations_created += 1
        if place.description and not doc.get("description"):  # Also after an interrupted run.
            await store.conversations.update_group(
                doc["_id"], creator, name=None, description=place.description
            )
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
        self._output: IO[bytes] | None = None

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
        self._output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _listening(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = self._said()
                self.__exit__()
                if any(sign in said for sign in DATA_IN_USE):
                    raise DemoError(
                        f"another server uses {self.storage}: scripts/run on another "
                        "LETSCHAT_EMBEDDED_MONGODB_PORT? Give scripts/demo the same one"
                    )
                raise DemoError(f"the embedded database did not start:\n{said[-2000:]}")
            time.sleep(0.1)
        return self.url(port)

    def _said(self) -> str:
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # As Ctrl+C in scripts/run: it saves, stops.
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None


async def _identify(url: str) -> bool:
    """Whether `url` is SecantusDB (the embedded server); DemoError if no MongoDB answers."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=IDENTIFY_TIMEOUT_MS, timeoutMS=IDENTIFY_TIMEOUT_MS
    )
    try:
        info = await client.admin.command("buildInfo")
    except PyMongoError as exc:
        raise DemoError(f"no MongoDB server answers at {url} ({exc.__class__.__name__})") from None
    finally:
        await client.close()
    return "secantusVersion" in info


async def _run(url: str, *, force: bool, database: str, team: Team) -> Report:
    # Asked before anything is written: a database that is not ours is left as it was.
    if not await _identify(url) and not force:
        raise DemoError(
            f"what listens at {url} is not the embedded SecantusDB (a MongoDB of yours on its "
            "port?); pass --force to fill it anyway, or set LETSCHAT_EMBEDDED_MONGODB_PORT"
        )
    store = Store.connect(url, database)
    try:
        await store.prepare()
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
    if report.conversations_incomplete:
        data = Path(env.get("LETSCHAT_DATA_DIR") or ROOT / ".data") / "secantus"
        print(
            "An earlier run stopped part way through "
            f"{', '.join(report.conversations_incomplete)}: to have them whole, stop "
            f"scripts/run, delete {data} (every account and message in it) and run "
            "scripts/demo again."
        )
    port = env.get("LETSCHAT_FRONTEND_PORT") or "3000"
    print(f"\nLog in at http://localhost:{port} with password {team.password!r} as:")
    for person in team.people:
        unread = report.unread.get(person.username)
        line = f"  {person.username:<8} {person.name}"
        print(f"{line:<26}({unread} unread)" if unread else line)
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
