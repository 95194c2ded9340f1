"""Benchmark accounts and the group they share, made without 1,000 bcrypt hashes.

Registering through the auth service costs one bcrypt hash (cost 12, about 250 ms) per user, so
1,000 users would take minutes. Instead every user is inserted through the project's own
`UserStore.create` with ONE precomputed hash of the shared password (a real bcrypt hash: any of
them can log in), and their access tokens are signed by `TokenIssuer` with the same secret and
audience the services verify. To show the shortcut changes nothing the services can see, the
group's creator logs in through the auth service, and that token creates the group over REST.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx

from backend_services.core.schemas import MAX_GROUP_MEMBERS
from backend_services.core.security import TokenIssuer, hash_password
from backend_services.core.store import Store
from backend_services.core.store.database import stored_now
from tests.support.stack import Stack

PASSWORD = "bench password, not a secret"  # noqa: S105 - throwaway accounts in a throwaway db
BCRYPT_ROUNDS = 12  # AuthSettings' minimum: the hash is the same kind the auth service writes.
JWT_AUDIENCE = "letschat"  # AuthSettings/MessageSettings default `jwt_audience`.
# Long enough for the slowest full run (`bench.fanout --rounds` keeps a system up through every
# rate and round); the sweep closes sockets whose token expired.
TOKEN_LIFETIME = timedelta(hours=3)
INSERT_CONCURRENCY = 50


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    token: str
    session_id: str = ""


async def create_users(mongo_url: str, db_name: str, count: int) -> list[Account]:
    """Insert `count` users sharing one bcrypt hash, each signed in once (a session, as a login
    makes); return them without tokens."""
    password_hash = hash_password(PASSWORD, BCRYPT_ROUNDS)
    prefix = uuid.uuid4().hex[:6]
    store = Store.connect(mongo_url, db_name)
    gate = asyncio.Semaphore(INSERT_CONCURRENCY)

    async def one(index: int) -> Account:
        username = f"bench{prefix}{index:05d}"
        session_id = uuid.uuid4().hex
        async with gate:
            user = await store.users.create(username, password_hash, f"Bench {index}")
            await store.sessions.create(
                session_id,
                user.id,
                uuid.uuid4().hex,  # Nobody refreshes a bench session: any hash will do.
                now=stored_now(),
                idle=TOKEN_LIFETIME,
                lifetime=TOKEN_LIFETIME,
                user_agent="bench",
                client_address="127.0.0.1",
            )
        return Account(user.id, username, token="", session_id=session_id)

    try:
        return list(await asyncio.gather(*(one(index) for index in range(count))))
    finally:
        await store.close()


def mint_tokens(accounts: list[Account], jwt_secret: str) -> list[Account]:
    issuer = TokenIssuer(secret=jwt_secret, audience=JWT_AUDIENCE, lifetime=TOKEN_LIFETIME)
    return [
        Account(a.id, a.username, issuer.issue(a.id, a.session_id)[0], a.session_id)
        for a in accounts
    ]


def login(auth_url: str, account: Account) -> Account:
    """Log in through the auth service (one real bcrypt check) and keep its token."""
    response = httpx.post(
        f"{auth_url}/auth/login",
        json={"username": account.username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    return Account(account.id, account.username, body["access_token"], body["session_id"])


async def create_group_in_store(
    mongo_url: str, db_name: str, creator: Account, members: list[Account]
) -> str:
    """The document POST /conversations/groups writes, without its per-member notifications.

    No socket is connected yet, so those notifications would reach nobody; the route builds one
    view (a 1,000-user lookup) per member for them, which is what makes it too slow here.
    """
    store = Store.connect(mongo_url, db_name)
    try:
        doc = await store.conversations.create_group(
            creator.id, "bench fan-out", [m.id for m in members], is_public=False
        )
    finally:
        await store.close()
    return str(doc["_id"])


def create_group(message_url: str, creator: Account, members: list[Account]) -> str:
    """POST /conversations/groups with every other account as a member; return its id."""
    if len(members) + 1 > MAX_GROUP_MEMBERS:
        raise ValueError(f"a group holds at most {MAX_GROUP_MEMBERS} members")
    response = httpx.post(
        f"{message_url}/conversations/groups",
        headers={"Authorization": f"Bearer {creator.token}"},
        json={"name": "bench fan-out", "member_ids": [m.id for m in members]},
        timeout=120,
    )
    response.raise_for_status()
    return str(response.json()["id"])


@dataclass(frozen=True)
class GroupSetup:
    accounts: list[Account]  # The creator first; every account has a token.
    group_id: str
    seconds: float
    message_url: str

    def last_seq(self) -> int:
        """The group's newest seq: a reconnecting client resumes from what it has seen."""
        response = httpx.get(
            f"{self.message_url}/conversations/{self.group_id}",
            headers={"Authorization": f"Bearer {self.accounts[0].token}"},
            timeout=30,
        )
        response.raise_for_status()
        return int(response.json()["last_seq"])


def seed_group(stack: Stack, clients: int, *, via: str) -> GroupSetup:
    """Create `clients` users and one group of all of them (over REST or in the store)."""
    started = time.monotonic()
    env = stack.env
    url, db = env["LETSCHAT_MONGODB_URL"], env["LETSCHAT_MONGODB_DB"]
    accounts = mint_tokens(asyncio.run(create_users(url, db, clients)), env["LETSCHAT_JWT_SECRET"])
    # A real login (the group's creator has a session of the auth service's making), with a
    # token as long-lived as the others'.
    (creator,) = mint_tokens([login(stack.auth_url, accounts[0])], env["LETSCHAT_JWT_SECRET"])
    members = accounts[1:]
    message_url = stack.messages[0].url
    if via == "rest":
        group_id = create_group(message_url, creator, members)
    else:
        group_id = asyncio.run(create_group_in_store(url, db, creator, members))
    return GroupSetup([creator, *members], group_id, time.monotonic() - started, message_url)
