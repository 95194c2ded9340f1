"""Who is signed in. The token pair lives in the browser's localStorage, shared by every tab;
the access token is renewed before it expires (letschat_app/tokens.py), so a session lasts as
long as the auth service's session does."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

import reflex as rx

from letschat_app import api_client, metrics, tokens
from letschat_protocol import ErrorCode

LOGIN_ROUTE = "/login"
HOME_ROUTE = "/"

# Why a session ended, as shown on the login page.
SESSION_ENDED = {
    ErrorCode.TOKEN_EXPIRED: "Your session expired. Please log in again.",
    ErrorCode.TOKEN_REVOKED: "You were logged out.",
    ErrorCode.UNAUTHORIZED: "Please log in again.",
    ErrorCode.REFRESH_TOKEN_EXPIRED: "Your session expired. Please log in again.",
}
# The refresh token was refused: the session ended, and the service's message says how.
REFRESH_REFUSED = frozenset(code for code in ErrorCode if code.startswith("refresh_token_"))
# Every tab of this process renews through it: one refresh per session at a time.
KEEPER = tokens.TokenKeeper()

P = ParamSpec("P")
T = TypeVar("T")


def notice_for(exc: api_client.ApiError) -> str:
    """What the login page says after the session ended with `exc`."""
    if exc.code in SESSION_ENDED:
        return SESSION_ENDED[ErrorCode(exc.code)]
    if exc.code in REFRESH_REFUSED:  # Ended elsewhere: the service says how.
        return f"{exc.message} Please log in again."
    return SESSION_ENDED[ErrorCode.UNAUTHORIZED]


class SessionState(rx.State):
    # sync=True: logging out (or in) in one tab does the same in every other tab.
    token: str = rx.LocalStorage("", name="letschat_token", sync=True)
    refresh_token: str = rx.LocalStorage("", name="letschat_refresh", sync=True)
    # The newest pair this tab renewed (backend only: never sent to the page).
    _newest_access: str = ""
    _newest_refresh: str = ""
    user_id: str = ""
    username: str = ""
    display_name: str = ""
    # Shown on the login page: why the user is there.
    notice: str = ""

    @rx.var
    def signed_in(self) -> bool:
        return self.token != ""

    def _start_session(self, response: api_client.TokenResponse) -> None:
        self.token = response.access_token
        self.refresh_token = response.refresh_token
        self._newest_access, self._newest_refresh = self.token, self.refresh_token
        self.user_id = response.user.id
        self.username = response.user.username
        self.display_name = response.user.display_name
        self.notice = ""

    def _end_session(self, notice: str, *, refused: bool = True) -> rx.event.EventSpec:
        """Forget the session and go to the login page; `refused`: because a service refused
        it (counted), not because the person logged out."""
        if refused:
            metrics.SESSIONS_ENDED.inc()
        self.token = self.refresh_token = ""
        self._newest_access = self._newest_refresh = ""
        self.user_id = self.username = self.display_name = ""
        self.notice = notice
        return rx.redirect(LOGIN_ROUTE)

    def _restore_newest(self) -> None:
        """A page back from offline or sleep gives the state what its storage held, which may
        be older than what this tab renewed meanwhile (the answer never reached the page).
        Presenting that older token would look like a stolen one to the auth service."""
        if tokens.behind(self.refresh_token, self._newest_refresh):
            self.token, self.refresh_token = self._newest_access, self._newest_refresh

    async def _fresh_token(self, *, force: bool = False) -> str:
        """The access token, renewed first if it is due (or `force`d: it was refused).

        Raises `ApiError`: a 401 if the session is over; when `force`d, also whatever kept the
        refresh from happening (rate limit, an unreachable service), which is no reason to log
        out. Unforced, such a failure returns the current token, which is still good for a while.
        """
        if not self.token or not self.refresh_token:
            return self.token
        self._restore_newest()
        if not force and not tokens.due(self.token):
            return self.token
        client_ip = self.router.session.client_ip

        async def refresh(refresh_token: str) -> api_client.TokenResponse:
            return await api_client.refresh(refresh_token, client_ip)

        try:
            pair = await KEEPER.renew(self.refresh_token, refresh)
        except api_client.ApiError as exc:
            if exc.ends_session or force:
                raise
            return self.token
        self.token, self.refresh_token = pair.access_token, pair.refresh_token
        self._newest_access, self._newest_refresh = self.token, self.refresh_token
        return self.token

    async def _call(
        self,
        request: Callable[Concatenate[str, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`request(token, ...)` with a fresh access token. If the token is refused, a refresh
        either renews it (the request is tried once more) or raises why the session is over
        (ended on another device, password changed...), for the login page to say."""
        token = await self._fresh_token()
        try:
            return await request(token, *args, **kwargs)
        except api_client.ApiError as exc:
            if not exc.ends_session or not self.refresh_token:
                raise
        return await request(await self._fresh_token(force=True), *args, **kwargs)

    @rx.event
    async def require_session(self):
        """On every signed-in page: go to the login page unless the token is still good."""
        if not self.token:
            return rx.redirect(LOGIN_ROUTE)
        try:
            user = await self._call(api_client.me)
        except api_client.ApiError as exc:
            if exc.ends_session:
                return self._end_session(notice_for(exc))
            return None  # The service is briefly unreachable: keep the session, the UI says so.
        self.user_id, self.username, self.display_name = user.id, user.username, user.display_name
        return None

    @rx.event
    async def logout(self):
        if self.token:
            # Already invalid, or unreachable: forgetting the tokens here is what matters.
            with contextlib.suppress(api_client.ApiError):
                await self._call(api_client.logout)
        return self._end_session("", refused=False)

    @rx.event
    def session_gone(self):
        """The token became empty: another tab logged out (the token is synced), or this tab's
        session ended and already says why."""
        return self._end_session(
            self.notice or SESSION_ENDED[ErrorCode.TOKEN_REVOKED], refused=False
        )
