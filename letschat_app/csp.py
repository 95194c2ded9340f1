"""The Content-Security-Policy of every page and every Reflex backend response.

Session tokens live in localStorage, so a script injected into a page could carry them off. The
policy lets a page run only the app's own files and the inline scripts React Router and Reflex
write into each page, by hash; it loads nothing and connects nowhere but the app's origin and the
Reflex backend (rxconfig's api_url). Who sends it:

- the Reflex backend (`security_headers`, an `api_transformer`): its pages when it serves the
  frontend (`--single-port`), with the hashes of the build it serves, and a deny-all policy on
  everything else (/ping, /_upload, ...);
- the Vite dev server of `reflex run --env dev` (`DevServerPolicy`, a Reflex plugin that adds a
  Vite plugin to the generated vite.config.js): each page it renders, with that page's hashes;
- nginx for the exported frontend (deploy/nginx/static.conf): deploy/nginx/csp_hashes.py writes the
  policy with the export's hashes at image build time.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from reflex_base.plugins.base import Plugin, PreCompileContext
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typing_extensions import Unpack

# Reflex runs the JavaScript that event handlers send (rx.call_script, and every rx.toast from
# the backend) through eval() in its state.js: without 'unsafe-eval' no toast or scroll would
# work. It admits only strings passed to eval by scripts already running; inline scripts, event
# handler attributes and other origins stay blocked.
SCRIPT_EVAL = "'unsafe-eval'"
# Emotion (Reflex's CSS-in-JS) writes <style> elements into each page and at run time, and the
# prerendered HTML carries style attributes; Reflex gives emotion no nonce, so styles (never
# scripts) may be inline.
STYLE_SOURCES = ("'self'", "'unsafe-inline'")
# For responses that are not pages: JSON, files, health checks.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Stands for the page's hashes in the policy handed to the Vite dev server.
DEV_HASHES_MARK = "__LETSCHAT_SCRIPT_HASHES__"


def page_policy(script_hashes: Iterable[str], api_url: str) -> str:
    """The policy of a page whose inline scripts have these hashes (`'sha256-…'`)."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", SCRIPT_EVAL, *sorted(set(script_hashes))],
        "style-src": list(STYLE_SOURCES),
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", *backend_origins(api_url)],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def backend_origins(api_url: str) -> list[str]:
    """The Reflex backend's HTTP and WebSocket origins (its event socket is ws:// or wss://)."""
    url = urlsplit(api_url)
    socket_scheme = "wss" if url.scheme == "https" else "ws"
    return [f"{url.scheme}://{url.netloc}", f"{socket_scheme}://{url.netloc}"]


class _InlineScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def inline_script_hashes(html: str) -> set[str]:
    """The CSP hashes of the inline scripts of a page, as the browser computes them."""
    # Browsers hash the script's text after the parser has turned CR LF and CR into LF.
    parser = _InlineScripts()
    parser.feed(html.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    return {_sha256(script) for script in parser.scripts}


def build_script_hashes(static_dir: Path) -> set[str]:
    """The hashes of every inline script in an exported frontend (one policy serves all pages)."""
    return {
        digest
        for page in sorted(static_dir.rglob("*.html"))
        for digest in inline_script_hashes(page.read_text(encoding="utf-8"))
    }


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


@cache
def _served_page_policy() -> str:
    """The policy of the pages this backend serves: built before it starts, never changed."""
    from reflex.utils.prerequisites import get_web_dir
    from reflex_base.config import get_config
    from reflex_base.constants import Dirs

    config = get_config()
    static_dir = get_web_dir() / Dirs.STATIC / config.frontend_path.strip("/")
    return page_policy(build_script_hashes(static_dir), config.api_url)


class SecurityHeaders:
    """ASGI middleware: the page policy on HTML responses, the deny-all one on the rest."""

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
                # A 304 has no body and no type: the browser keeps the cached response and
                # takes the 304's headers over it, so a policy here would replace the page's
                # (a deny-all one would blank a reloaded page). It keeps the one cached.
                if message.get("status") != 304:
                    page = headers.get("content-type", "").startswith("text/html")
                    policy = _served_page_policy() if page else API_POLICY
                    headers["Content-Security-Policy"] = policy
                    if page:
                        headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(app: ASGIApp) -> ASGIApp:
    """The `api_transformer` of rx.App."""
    return SecurityHeaders(app)


# A Vite plugin for the dev server only (`apply: "serve"`; builds and `vite preview` skip it).
# React Router renders each page on request, so the hashes are taken from the page as it leaves
# the server: the dev server's HTML comes from the app's code only, never from users.
_VITE_PLUGIN = """
function letschatContentSecurityPolicy(template, mark) {
  const inlineScript = /<script\\b(?![^>]*\\ssrc\\s*=)[^>]*>([\\s\\S]*?)<\\/script\\s*>/gi;
  const hash = (text) => {
    const digest = createHash("sha256").update(text.replace(/\\r\\n?/g, "\\n")).digest("base64");
    return `'sha256-${digest}'`;
  };
  const isFunction = (arg) => typeof arg === "function";
  return {
    name: "letschat-content-security-policy",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        res.setHeader("X-Content-Type-Options", "nosniff");
        if (!(req.headers.accept || "").includes("text/html")) return next();
        // Hold the page back until it is whole: the header must name every script in it.
        const { writeHead, end } = res;
        const chunks = [];
        let head = null;
        const keep = (chunk, encoding) => {
          if (chunk === undefined || chunk === null || isFunction(chunk)) return;
          const charset = typeof encoding === "string" ? encoding : "utf8";
          chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, charset));
        };
        res.writeHead = (...args) => {
          head = args;
          return res;
        };
        res.flushHeaders = () => {};
        res.write = (chunk, encoding, callback) => {
          keep(chunk, encoding);
          const done = [encoding, callback].find(isFunction);
          if (done) process.nextTick(done);
          return true;
        };
        res.end = (chunk, encoding, callback) => {
          keep(chunk, encoding);
          const done = [chunk, encoding, callback].find(isFunction);
          const body = Buffer.concat(chunks);
          const given = (head || []).find((arg) => arg && typeof arg === "object") || {};
          const type = String(res.getHeader("content-type") || given["content-type"] || "");
          const scripts = type.includes("text/html")
            ? [...body.toString("utf8").matchAll(inlineScript)].map((m) => hash(m[1]))
            : [];
          const policy = template.replace(mark, [...new Set(scripts)].join(" "));
          res.setHeader("Content-Security-Policy", policy.replace(" ;", ";"));
          res.writeHead = writeHead;
          res.end = end;
          if (head) res.writeHead(...head);
          return res.end(body, done);
        };
        next();
      });
    },
  };
}
"""
_DEFINE_ANCHOR = "export default defineConfig"
_PLUGINS_ANCHOR = "alwaysUseReactDomServerNode(),"


def add_dev_server_policy(vite_config: str, api_url: str) -> str:
    """vite.config.js with the page policy on every response of the dev server."""
    if "letschatContentSecurityPolicy" in vite_config:
        return vite_config
    if _DEFINE_ANCHOR not in vite_config or _PLUGINS_ANCHOR not in vite_config:
        msg = (
            f"Cannot add the CSP to vite.config.js: {_DEFINE_ANCHOR!r} or {_PLUGINS_ANCHOR!r} "
            "is missing (did Reflex change its Vite config template?)"
        )
        raise RuntimeError(msg)
    template = page_policy([DEV_HASHES_MARK], api_url)
    call = f"letschatContentSecurityPolicy({json.dumps(template)}, {json.dumps(DEV_HASHES_MARK)}),"
    return 'import { createHash } from "node:crypto";\n' + vite_config.replace(
        _DEFINE_ANCHOR, _VITE_PLUGIN + "\n" + _DEFINE_ANCHOR, 1
    ).replace(_PLUGINS_ANCHOR, f"{call}\n    {_PLUGINS_ANCHOR}", 1)


class DevServerPolicy(Plugin):
    """Adds the page policy to the Vite dev server Reflex generates (`.web/vite.config.js`)."""

    def pre_compile(self, **context: Unpack[PreCompileContext]) -> None:
        from reflex_base.config import get_config
        from reflex_base.constants import ReactRouter

        api_url = get_config().api_url
        context["add_modify_task"](
            ReactRouter.VITE_CONFIG_FILE, lambda text: add_dev_server_policy(text, api_url)
        )
