"""What an operator sees: `/metrics` on both services moving as frames and requests flow, and
the services' logs as one JSON object per line, with the request or socket and the user, and
never a token, a password or a message's text."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.support.clients import PASSWORD, Api, Socket, send_frame
from tests.support.metrics import Samples, moved, scrape, value
from tests.support.processes import wait_until
from tests.support.stack import Stack


def total(samples: Samples, name: str) -> float:
    """The sum over every label of one sample name (every command's count, say)."""
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_message_metrics_move_as_frames_flow(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    here = stack.messages[0]
    before = await scrape(f"{here.url}/metrics")

    alice_socket = await Socket.open(here.ws_url, alice.token, resume={})
    bob_socket = await Socket.open(here.ws_url, bob.token, resume={})
    during = await scrape(f"{here.url}/metrics")
    assert value(during, "letschat_ws_connections") == value(before, "letschat_ws_connections") + 2

    for n in range(3):
        await alice_socket.send(send_frame(dm, f"m{n}", f"hello {n}"))
        await alice_socket.next("ack", client_msg_id=f"m{n}")
        await bob_socket.next("message")
    await alice_socket.send("not json")
    await alice_socket.next("error")
    late = await Socket.open(here.ws_url, bob.token, resume={dm: 1})  # Two messages behind.
    assert [m["body"] for m in late.messages(dm)] == ["hello 1", "hello 2"]
    after = await scrape(f"{here.url}/metrics")

    def delta(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert delta("letschat_ws_frames_received_total", type="send") == 3
    assert delta("letschat_ws_frames_received_total", type="invalid") == 1
    assert delta("letschat_ws_frames_received_total", type="resume") == 3
    assert delta("letschat_ws_frames_received_total", type="auth") == 3
    assert delta("letschat_ws_frames_sent_total", type="ack") == 3
    assert delta("letschat_ws_frames_sent_total", type="error") == 1
    # Live to both members' sockets (the sender's too), then two more read on resume.
    assert delta("letschat_deliveries_total", feed="message") == 6
    assert delta("letschat_ws_frames_sent_total", type="message") == 6 + 2
    assert delta("letschat_send_ack_seconds_count") == 3
    assert delta("letschat_send_ack_seconds_sum") > 0
    # Only the late socket's resume had missed anything: two messages in one conversation.
    assert delta("letschat_resume_messages_count") == 1
    assert delta("letschat_resume_messages_sum") == 2
    assert value(after, "letschat_store_up") == 1
    inserts = ("letschat_store_command_duration_seconds_count", {"command": "insert"})
    assert delta(inserts[0], **inserts[1]) >= 3
    assert value(after, "letschat_service_info", service="message", version="0.1.0") == 1

    for socket in (alice_socket, bob_socket, late):
        await socket.close()


async def test_metrics_are_refused_to_whatever_came_through_a_proxy(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (stack.auth_url, stack.messages[0].url):
            proxied = await http.get(f"{url}/metrics", headers={"X-Forwarded-For": "192.0.2.1"})
            assert proxied.status_code == 404
            assert "letschat_" not in proxied.text


async def test_auth_metrics_count_how_logins_and_refreshes_end(stack: Stack, api: Api) -> None:
    alice = await api.register("alice")
    username = alice.user["username"]
    before = await scrape(f"{stack.auth_url}/metrics")

    async def login(password: str) -> httpx.Response:
        return await api.http.post(
            f"{stack.auth_url}/auth/login", json={"username": username, "password": password}
        )

    assert (await login(PASSWORD)).status_code == 200
    for _ in range(5):  # The per-username limit (5 failures), then throttled.
        assert (await login("not the password")).status_code == 401
    assert (await login("not the password")).status_code == 429
    refreshed = await api.http.post(
        f"{stack.auth_url}/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert refreshed.status_code == 200
    forged = await api.http.post(f"{stack.auth_url}/auth/refresh", json={"refresh_token": "x"})
    assert forged.status_code == 401
    after = await scrape(f"{stack.auth_url}/metrics")

    def delta(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert delta("letschat_logins_total", outcome="success") == 1
    assert delta("letschat_logins_total", outcome="failure") == 5
    assert delta("letschat_logins_total", outcome="throttled") == 1
    assert delta("letschat_refreshes_total", outcome="success") == 1
    assert delta("letschat_refreshes_total", outcome="rejected") == 1
    assert value(after, "letschat_registrations_total", outcome="taken") == 0  # Present at 0.
    login_route = {"route": "/auth/login", "method": "POST"}
    assert delta("letschat_http_requests_total", **login_route, status="401") == 5
    assert delta("letschat_http_requests_total", **login_route, status="429") == 1
    assert total(after, "letschat_store_command_duration_seconds_count") > total(
        before, "letschat_store_command_duration_seconds_count"
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object."""
    lines = []
    for line in text.splitlines():
        parsed = json.loads(line)  # A line that is not JSON fails here, naming itself.
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


async def test_logs_are_json_lines_with_request_user_and_never_secrets(
    stack: Stack, api: Api
) -> None:
    secret_password = f"pw-{uuid.uuid4().hex}"
    alice = await api.register("alice", password=secret_password)
    bob = await api.register("bob")
    dm = await api.direct(alice, bob)
    body = f"a body nobody logs {uuid.uuid4().hex}"
    request_id = f"test-{uuid.uuid4().hex[:8]}"
    response = await api.http.post(
        f"{api.message_url}/conversations/{dm}/messages",
        json={"body": body, "client_msg_id": "c1"},
        headers={**alice.headers, "X-Request-ID": request_id},
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == request_id
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    await socket.send(send_frame(dm, "c2", body))
    await socket.next("ack", client_msg_id="c2")
    await socket.send({"type": "edit", "conversation_id": dm, "message_id": "nope", "body": "x"})
    await socket.next("error")
    await socket.close()
    # Hiding nothing behind a lack of errors: one line per request, so these are logged.
    await api.http.get(f"{stack.messages[0].url}/conversations/{dm}/nothing-here")

    # The server writes a socket's close line once its end of the socket is done.
    wait_until(lambda: '"socket closed"' in stack.messages[0].log(), 10, "the socket's close line")
    auth_log = stack.auth.log()
    message_log = stack.messages[0].log()
    for text in (auth_log, message_log):
        assert secret_password not in text
        assert alice.token not in text
        assert alice.refresh_token not in text
        assert body not in text
    auth_lines, message_lines = json_lines(auth_log), json_lines(message_log)
    for line in auth_lines + message_lines:
        assert {"ts", "level", "service", "instance", "logger", "event"} <= line.keys(), line
    assert {line["service"] for line in auth_lines} == {"auth"}
    assert {line["service"] for line in message_lines} == {"message"}

    sockets = [line for line in message_lines if line["event"].startswith("socket ")]
    assert [line["event"] for line in sockets] == ["socket opened", "socket closed"]
    assert {line["user_id"] for line in sockets} == {alice.id}
    assert len({line["connection_id"] for line in sockets}) == 1
    assert sockets[1]["closed_by"] == "client"
    assert not [line for line in message_lines if "WebSocket" in line["event"]]

    posted = [line for line in message_lines if line.get("request_id") == request_id]
    assert len(posted) == 1, posted
    assert posted[0]["route"] == "/conversations/{conversation_id}/messages"
    assert posted[0]["status"] == 201
    assert posted[0]["user_id"] == alice.id
    assert [line for line in message_lines if line.get("status") == 404]
    registered = [line for line in auth_lines if line.get("route") == "/auth/register"]
    assert len(registered) == 2
    assert all("user_id" not in line for line in registered)  # Nobody signed in yet.
    assert not [line for line in auth_lines if line.get("route") in ("/healthz", "/readyz")]
