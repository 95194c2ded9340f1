"""scripts/demo: a fresh embedded database gets the demo team, seen through the REST API as one
of its people; a second run changes nothing; a database that is not the embedded one is left
alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from backend_services.core.store import Store
from tests.support.clients import Account, Api
from tests.support.processes import REPO_ROOT, free_port, start_secantus
from tests.support.stack import running_stack

DEMO = REPO_ROOT / "scripts" / "demo.py"
PASSWORD = "letschat-demo"  # scripts/demo_team.toml
# What scripts/demo_team.toml holds for maya: her conversations, and her unread messages in each
# (the threads marked unread, less what she sent).
MAYAS = {"General", "Random", "Launch team", "Tom Becker", "Lena Okafor", "Sam Rivera"}
MAYAS_UNREAD = {"General": 3, "Sam Rivera": 2, "Launch team": 2}


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def login(api: Api, username: str) -> Account:
    response = await api.http.post(
        f"{api.auth_url}/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return Account.signed_in(response.json(), PASSWORD)


async def whole_history(api: Api, account: Account, conversation_id: str) -> list[dict[str, Any]]:
    """Every message, paging back as the web app does (50 at a time)."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        body = await api.ok(
            "GET", f"/conversations/{conversation_id}/messages", account, params=params
        )
        found = body["messages"] + found
        if not body["has_more"]:
            return found
        params["before_seq"] = body["messages"][0]["seq"]


@pytest.mark.timeout(300)
async def test_the_demo_team_is_there_for_its_people_and_a_second_run_changes_nothing(
    tmp_path: Path, log_dir: Path
) -> None:
    port = free_port()
    env = {
        "LETSCHAT_DATA_DIR": str(tmp_path),
        "LETSCHAT_EMBEDDED_MONGODB_PORT": str(port),
        "LETSCHAT_MONGODB_URL": "",
        "LETSCHAT_FRONTEND_PORT": "3456",
    }
    first = demo(env)  # Nothing runs: it starts the embedded server on the data itself.
    assert first.returncode == 0, first.stderr
    assert "216 messages written" in first.stdout, first.stdout
    assert "http://localhost:3456" in first.stdout
    assert "maya     Maya Patel     (7 unread)" in first.stdout, first.stdout

    # scripts/run's embedded server on the same data and port, and the services on it.
    secantus, mongo_url = start_secantus(tmp_path / "secantus", log_dir, port)
    try:
        with running_stack(
            mongo_url, None, log_dir, instances=1, LETSCHAT_MONGODB_DB="letschat"
        ) as stack:
            api = Api(stack.auth_url, stack.messages[0].url)
            try:
                maya = await login(api, "maya")
                conversations = {c["name"]: c for c in await api.ok("GET", "/conversations", maya)}
                assert set(conversations) == MAYAS
                unread = {name: c["unread"] for name, c in conversations.items() if c["unread"]}
                assert unread == MAYAS_UNREAD
                general = conversations["General"]
                assert general["is_public"]
                assert not conversations["Launch team"]["is_public"]
                assert len(general["members"]) == 6

                history = await whole_history(api, maya, general["id"])
                assert len(history) == general["last_seq"] > 50  # More than one page.
                days = {m["created_at"][:10] for m in history}
                assert len(days) >= 6  # Day separators show.
                stamps = [datetime.fromisoformat(m["created_at"]) for m in history]
                assert stamps == sorted(stamps)
                assert stamps[-1] <= datetime.now(UTC)
                assert stamps[0] <= datetime.now(UTC) - timedelta(days=5)
                assert any(m.get("reactions") for m in history)
                assert any(m.get("reply_to") for m in history)
                # Written as the composer sends them: shortcodes become emoji.
                assert any("\N{PARTY POPPER}" in m["body"] for m in history)
                assert not any(":tada:" in m["body"] or ":wave:" in m["body"] for m in history)
                found = await api.ok("GET", "/search", maya, params={"q": "cactus"})
                assert len(found["messages"]) == 4, found  # Every line about the cactus.

                # priya is not in Random, a public group she can find and join.
                priya = await login(api, "priya")
                public = await api.ok("GET", "/groups", priya, params={"q": "ran"})
                assert [g["name"] for g in public] == ["Random"], public

                # A second run, while the server runs: nothing is written again.
                second = demo(env)
                assert second.returncode == 0, second.stderr
                assert "already there; nothing was changed" in second.stdout, second.stdout
                again = {c["name"]: c for c in await api.ok("GET", "/conversations", maya)}
                assert {n: c["last_seq"] for n, c in again.items()} == {
                    n: c["last_seq"] for n, c in conversations.items()
                }
                users = await api.ok("GET", "/users", priya, params={"q": "maya"})
                assert [u["username"] for u in users] == ["maya"]
            finally:
                await api.aclose()
            assert not stack.bad_log_lines(), stack.bad_log_lines()
    finally:
        secantus.stop()


async def test_the_demo_leaves_a_database_that_is_not_the_embedded_one_alone(
    mongo_url: str,
) -> None:
    name = f"test_{uuid.uuid4().hex[:12]}"
    refused = demo({"LETSCHAT_MONGODB_URL": mongo_url, "LETSCHAT_MONGODB_DB": name})
    assert refused.returncode == 2
    assert "LETSCHAT_MONGODB_URL" in refused.stderr
    assert "--force" in refused.stderr
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        assert name not in await client.list_database_names()
    finally:
        await client.close()


async def test_the_demo_writes_nothing_where_no_embedded_database_answers(
    tmp_path: Path,
) -> None:
    with socket.socket() as squatter:  # Something on the port, but no MongoDB.
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        refused = demo(
            {
                "LETSCHAT_DATA_DIR": str(tmp_path),
                "LETSCHAT_EMBEDDED_MONGODB_PORT": str(port),
                "LETSCHAT_MONGODB_URL": "",
            }
        )
    assert refused.returncode == 2, refused.stderr
    assert "no MongoDB server answers" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_a_run_stopped_part_way_is_told_apart_from_a_finished_one(
    tmp_path: Path, log_dir: Path
) -> None:
    """An interrupted run left maya and tom with one message of their fifteen: a second run
    says so (and how to start afresh) instead of calling the conversation done."""
    port = free_port()
    secantus, mongo_url = start_secantus(tmp_path / "secantus", log_dir, port)
    try:
        store = Store.connect(mongo_url, "letschat")
        await store.prepare()
        maya = await store.users.create("maya", "not a hash", "Maya Patel")
        tom = await store.users.create("tom", "not a hash", "Tom Becker")
        dm, _ = await store.conversations.open_direct(maya.id, tom.id)
        await store.messages.append(dm["_id"], maya, "the first of many", "demo-1")
        await store.close()
        again = demo(
            {
                "LETSCHAT_DATA_DIR": str(tmp_path),
                "LETSCHAT_EMBEDDED_MONGODB_PORT": str(port),
                "LETSCHAT_MONGODB_URL": "",
            }
        )
    finally:
        secantus.stop()
    assert again.returncode == 0, again.stderr
    assert "An earlier run stopped part way through maya & tom" in again.stdout, again.stdout
    assert f"delete {tmp_path / 'secantus'}" in again.stdout


def test_the_demo_names_a_mistake_in_its_team_file(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import demo_team  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    broken = (REPO_ROOT / "scripts" / "demo_team.toml").read_text()
    broken = broken.replace('"lena: Lunch? The ramen', '"priya: Lunch? The ramen', 1)
    path = tmp_path / "team.toml"
    path.write_text(broken)
    with pytest.raises(demo_team.DemoError, match=r"thread 'random' at '-6d 12:31', line 0"):
        demo_team.load_team(path)
