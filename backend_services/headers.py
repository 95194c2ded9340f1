"""Headers every service response carries: no content sniffing, and JSON answers that can never
run as a page.

The services answer JSON (and serve their OpenAPI page at /docs). A JSON body a browser was
tricked into rendering, or a response framed by another site, must do nothing:
`X-Content-Type-Options: nosniff` on everything, and on everything but HTML
`Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` (the /docs page loads
Swagger UI's scripts, so it keeps FastAPI's own terms).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class ResponseHeaders:
    """ASGI middleware adding those headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                # A 304's headers replace the cached response's: it keeps the policy it had.
                html = headers.get("content-type", "").startswith("text/html")
                if message.get("status") != 304 and not html:
                    headers["Content-Security-Policy"] = API_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
