"""Who is signed in. The access token lives in the browser's localStorage, shared by every tab."""

from __future__ import annotations

import contextlib

import reflex as rx

from letschat_app import api_client

LOGIN_ROUTE = "/login"
HOME_ROUTE = "/"

# Why a session ended, as shown on the login page.
SESSION_ENDED = {
    "token_expired": "Your session expired. Please log in again.",
    "token_revoked": "You were logged out.",
    "unauthorized": "Please log in again.",
}


class SessionState(rx.State):
    # sync=True: logging out (or in) in one tab does the same in every other tab.
    token: str = rx.LocalStorage("", name="letschat_token", sync=True)
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
        self.user_id = response.user.id
        self.username = response.user.username
        self.display_name = response.user.display_name
        self.notice = ""

    def _end_session(self, notice: str) -> rx.event.EventSpec:
        self.token = ""
        self.user_id = self.username = self.display_name = ""
        self.notice = notice
        return rx.redirect(LOGIN_ROUTE)

    @rx.event
    async def require_session(self):
        """On every signed-in page: go to the login page unless the token is still good."""
        if not self.token:
            return rx.redirect(LOGIN_ROUTE)
        try:
            user = await api_client.me(self.token)
        except api_client.ApiError as exc:
            if exc.ends_session:
                return self._end_session(SESSION_ENDED.get(exc.code, SESSION_ENDED["unauthorized"]))
            return None  # The service is briefly unreachable: keep the session, the UI says so.
        self.user_id, self.username, self.display_name = user.id, user.username, user.display_name
        return None

    @rx.event
    async def logout(self):
        if self.token:
            # Already invalid, or unreachable: forgetting the token here is what matters.
            with contextlib.suppress(api_client.ApiError):
                await api_client.logout(self.token)
        return self._end_session("")

    @rx.event
    def session_gone(self):
        """Another tab logged out (the synced token became empty)."""
        return self._end_session(SESSION_ENDED["token_revoked"])
