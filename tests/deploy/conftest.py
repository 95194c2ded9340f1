"""Readers for what ships the app: compose file, task definitions, nginx configs, Dockerfiles.

The tests in this folder run the static checkers (hadolint, actionlint, zizmor, schemas) and check
that these files agree with each other and with the settings classes.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import crossplane
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
COMPOSE_PATH = ROOT / "docker-compose.yml"
ECS_DIR = ROOT / "deploy" / "ecs"
LB_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
STATIC_CONF = ROOT / "deploy" / "nginx" / "static.conf"
WORKFLOWS = ROOT / ".github" / "workflows"


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
    return loaded


@cache
def task_definitions() -> dict[str, dict[str, Any]]:
    """Task definition by file stem (auth, message, frontend)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(ECS_DIR.glob("*.json"))}


@cache
def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


# --- nginx ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] = ()

    def all(self, name: str) -> list[Directive]:
        return [child for child in self.block if child.name == name]

    def one(self, name: str) -> Directive:
        found = self.all(name)
        assert len(found) == 1, f"expected one {name!r} in {self.name} {self.args}, got {found}"
        return found[0]


def _directives(parsed: list[dict[str, Any]]) -> tuple[Directive, ...]:
    return tuple(
        Directive(item["directive"], tuple(item["args"]), _directives(item.get("block", [])))
        for item in parsed
    )


@cache
def nginx(path: Path) -> Directive:
    """The parsed config as a tree under a synthetic `main` directive."""
    # Not strict: crossplane reads a map's entries as unknown directives.
    result = crossplane.parse(str(path), single=True, check_ctx=True, check_args=True)
    assert result["status"] == "ok", result["errors"]
    return Directive("main", (), _directives(result["config"][0]["parsed"]))


@dataclass(frozen=True)
class Route:
    """Where a request path ends up, with the settings nginx applies on the way."""

    location: Directive
    upstream: str | None
    proxy_pass: str | None
    headers: dict[str, str]
    settings: dict[str, str]


def _inherited(levels: list[Directive], name: str) -> list[Directive]:
    """nginx inheritance: the innermost level that sets `name` at all wins, whole."""
    for level in reversed(levels):
        found = level.all(name)
        if found:
            return found
    return []


def route(config: Directive, path: str) -> Route:
    """Pick the location nginx would for `path`: exact match, else the longest prefix.

    (The configs here use no regular-expression locations; the test that calls this fails if
    one appears.)
    """
    http = config.one("http")
    server = http.one("server")
    locations = server.all("location")
    assert all(loc.args[0] in ("=", "^~") or len(loc.args) == 1 for loc in locations)
    exact = [loc for loc in locations if loc.args[0] == "=" and loc.args[1] == path]
    if exact:
        chosen = exact[0]
    else:
        prefixes = [loc for loc in locations if len(loc.args) == 1 and path.startswith(loc.args[0])]
        assert prefixes, f"no location for {path}"
        chosen = max(prefixes, key=lambda loc: len(loc.args[0]))
    levels = [http, server, chosen]
    proxy_pass = chosen.all("proxy_pass")
    target = proxy_pass[0].args[0] if proxy_pass else None
    upstream = re.sub(r"^https?://([^/:]+).*$", r"\1", target) if target else None
    headers = {d.args[0]: d.args[1] for d in _inherited(levels, "proxy_set_header")}
    settings = {}
    for name in ("proxy_http_version", "proxy_read_timeout", "proxy_send_timeout"):
        found = _inherited(levels, name)
        if found:
            settings[name] = found[0].args[0]
    return Route(chosen, upstream, target, headers, settings)


def upstream_servers(config: Directive) -> dict[str, list[tuple[str, int, tuple[str, ...]]]]:
    """Upstream name -> [(host, port, parameters)]."""
    servers: dict[str, list[tuple[str, int, tuple[str, ...]]]] = {}
    for upstream in config.one("http").all("upstream"):
        entries = []
        for server in upstream.all("server"):
            host, _, port = server.args[0].rpartition(":")
            entries.append((host, int(port), server.args[1:]))
        servers[upstream.args[0]] = entries
    return servers


def listen_port(config: Directive) -> int:
    listen = config.one("http").one("server").one("listen").args[0]
    return int(listen.rpartition(":")[2])


def seconds(value: str) -> int:
    """An nginx time value ("3600s", "1h", "60") in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "ms": 0}[unit]


# --- Dockerfiles ----------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for rest in self.all("ENV"):
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                values[name] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON array of CMD or ENTRYPOINT."""
        (rest,) = self.all(keyword)
        parsed: list[str] = json.loads(rest)
        return parsed

    def healthcheck(self) -> list[str]:
        """HEALTHCHECK's test as compose and ECS write it: ["CMD", *exec form]."""
        (rest,) = self.all("HEALTHCHECK")
        options, _, array = rest.partition(" CMD ")
        assert all(word.startswith("--") for word in options.split()), "exec form only"
        parsed: list[str] = json.loads(array)
        return ["CMD", *parsed]


@cache
def dockerfile(name: str) -> dict[str, Stage]:
    """Stages by name, in order; instructions with line continuations joined."""
    text = (ROOT / name).read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    args: dict[str, str] = {}
    for instruction in logical:
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else base
            current = stages[stage_name] = Stage(stage_name, base)
        elif current is None:
            if keyword == "ARG":
                name, _, value = rest.partition("=")
                args[name] = value
        else:
            current.instructions.append((keyword, rest))
    return stages
