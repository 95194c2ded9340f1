"""The compose file, task definitions, nginx configs, Dockerfiles and workflows agree.

With each other (ports, health paths, image names) and with the code: every LETSCHAT_ variable
is one the services or the web app read, and each place that runs a service in production gives
it what production requires.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel

from backend_services.core.config import AuthSettings, CommonSettings, MessageSettings
from backend_services.web import health_router
from tests.deploy.conftest import (
    COMPOSE_PATH,
    LB_CONF,
    ROOT,
    STATIC_CONF,
    compose,
    dockerfile,
    listen_port,
    nginx,
    route,
    seconds,
    task_definitions,
    upstream_servers,
    workflow,
)

BACKEND: dict[str, type[CommonSettings]] = {"auth": AuthSettings, "message": MessageSettings}
SERVICE_MODULE = {
    "auth": "backend_services.auth_service",
    "message": "backend_services.message_service",
}
# Where each compose service's container answers, as the load balancer names it.
LB_UPSTREAM = {"auth": "auth", "message": "message", "frontend": "reflex_backend"}
SECRETS = {
    "LETSCHAT_JWT_SECRET",
    "LETSCHAT_MONGODB_URL",
    "LETSCHAT_REDIS_URL",
    "REFLEX_REDIS_URL",
}
STRONG_SECRET = "s" * 48
VARIABLE = re.compile(r"LETSCHAT_[A-Z0-9_]+")
DEPLOY_FILES = [
    COMPOSE_PATH,
    ROOT / "Dockerfile.backend",
    ROOT / "Dockerfile.frontend",
    *sorted(p for p in (ROOT / "deploy").rglob("*") if "__pycache__" not in p.parts),
    *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
    ROOT / "docs" / "deploy.md",
]


def settings_variables(settings: type[BaseModel]) -> set[str]:
    return {f"LETSCHAT_{name.upper()}" for name in settings.model_fields}


def web_app_variables() -> set[str]:
    """What the Reflex app reads (rxconfig.py and letschat_app/)."""
    found: set[str] = set()
    for path in [ROOT / "rxconfig.py", *ROOT.glob("letschat_app/**/*.py")]:
        found |= set(re.findall(r"[\"'](LETSCHAT_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def harness_variables() -> set[str]:
    """What the tests themselves read (for example LETSCHAT_TEST_REDIS_URL in CI)."""
    found: set[str] = set()
    for path in ROOT.glob("tests/**/*.py"):
        if "deploy" not in path.parts:
            found |= set(re.findall(r"[\"'](LETSCHAT_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


# --- the places a service runs --------------------------------------------------------------


def compose_environment(service: str) -> dict[str, str | None]:
    """Name -> value as written (None: passed through from the shell or .env if set)."""
    environment = compose()["services"][service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: use the mapping form"
    return {name: None if value is None else str(value) for name, value in environment.items()}


def ecs_container(service: str) -> dict[str, Any]:
    file, container = {"frontend": ("frontend", "app"), "web": ("frontend", "web")}.get(
        service, (service, service)
    )
    (found,) = [
        c for c in task_definitions()[file]["containerDefinitions"] if c["name"] == container
    ]
    return found


def ecs_environment(service: str) -> dict[str, str]:
    return {item["name"]: item["value"] for item in ecs_container(service).get("environment", [])}


def ecs_secrets(service: str) -> dict[str, str]:
    return {item["name"]: item["valueFrom"] for item in ecs_container(service).get("secrets", [])}


def compose_public_origin() -> str:
    """The load balancer's published port on localhost: the one origin browsers use."""
    (mapping,) = compose()["services"]["lb"]["ports"]
    published, _, _ = str(mapping).partition(":")
    return f"http://localhost:{published}"


def ecs_public_origin() -> str:
    return ecs_environment("frontend")["LETSCHAT_PUBLIC_URL"]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- every variable is real -----------------------------------------------------------------


def test_every_letschat_variable_in_the_deploy_files_is_read_by_something() -> None:
    known = (
        settings_variables(AuthSettings)
        | settings_variables(MessageSettings)
        | web_app_variables()
        | harness_variables()
    )
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in DEPLOY_FILES
        if path.is_file()
        for name in VARIABLE.findall(path.read_text())
        if name not in known
    }
    assert not unknown, "typo, or a setting nothing reads"


@pytest.mark.parametrize("service", ["auth", "message"])
def test_backend_variables_are_fields_of_that_services_settings(service: str) -> None:
    fields = settings_variables(BACKEND[service])
    given = {
        *compose_environment(service),
        *ecs_environment(service),
        *ecs_secrets(service),
    }
    # Settings ignore unknown variables, so a misplaced one would be silently without effect.
    assert {name for name in given if name.startswith("LETSCHAT_")} <= fields


def test_frontend_variables_are_read_by_the_web_app() -> None:
    given = {
        *compose_environment("frontend"),
        *ecs_environment("frontend"),
        *ecs_secrets("frontend"),
        *compose()["x-frontend-build"]["args"],
        *dockerfile("Dockerfile.frontend")["app"].env(),
    }
    assert {name for name in given if name.startswith("LETSCHAT_")} <= web_app_variables()


# --- production requirements ----------------------------------------------------------------


@pytest.mark.parametrize("service", ["auth", "message"])
def test_compose_gives_each_backend_service_what_production_requires(service: str) -> None:
    env = compose_environment(service)
    assert env["LETSCHAT_ENVIRONMENT"] == "production"
    assert env["LETSCHAT_HOST"] == "0.0.0.0"
    # Compose refuses to start without a secret rather than fall back to anything.
    assert (env["LETSCHAT_JWT_SECRET"] or "").startswith("${LETSCHAT_JWT_SECRET:?")
    assert (env["LETSCHAT_MONGODB_URL"] or "").startswith("mongodb://mongo:")
    if service == "message":
        assert (env["LETSCHAT_REDIS_URL"] or "").startswith("redis://redis:")
        allowed = (env["LETSCHAT_ALLOWED_ORIGINS"] or "").split(",")
        assert compose_public_origin() in allowed


@pytest.mark.parametrize("service", ["auth", "message"])
def test_ecs_gives_each_backend_service_what_production_requires(service: str) -> None:
    env, secrets = ecs_environment(service), ecs_secrets(service)
    assert env["LETSCHAT_ENVIRONMENT"] == "production"
    assert env["LETSCHAT_HOST"] == "0.0.0.0"
    required_secrets = {"LETSCHAT_JWT_SECRET", "LETSCHAT_MONGODB_URL"}
    if service == "message":
        required_secrets.add("LETSCHAT_REDIS_URL")
        assert ecs_public_origin() in env["LETSCHAT_ALLOWED_ORIGINS"].split(",")
    assert required_secrets <= set(secrets)
    for arn in secrets.values():
        assert arn.startswith(("arn:aws:ssm:", "arn:aws:secretsmanager:"))


@pytest.mark.parametrize("place", ["compose", "ecs"])
def test_secrets_never_appear_as_plain_values(place: str) -> None:
    for service in ["auth", "message", "frontend"]:
        if place == "ecs":
            assert not SECRETS & set(ecs_environment(service)), service
        else:
            secret = compose_environment(service).get("LETSCHAT_JWT_SECRET")
            assert secret is None or secret.startswith("${"), service


@pytest.mark.parametrize("place", ["compose", "ecs"])
@pytest.mark.parametrize("service", ["auth", "message"])
def test_the_settings_given_pass_validation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, place: str, service: str
) -> None:
    """Loaded as the service loads them, with stand-ins for what comes from secrets."""
    for name in [name for name in os.environ if name.startswith("LETSCHAT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # No .env from the repository.
    stand_ins = {
        "LETSCHAT_JWT_SECRET": STRONG_SECRET,
        "LETSCHAT_MONGODB_URL": "mongodb://db.internal:27017",
        "LETSCHAT_REDIS_URL": "rediss://cache.internal:6379/0",
    }
    if place == "compose":
        given = {k: v for k, v in compose_environment(service).items() if v is not None}
        given["LETSCHAT_JWT_SECRET"] = STRONG_SECRET
    else:
        given = {**ecs_environment(service), **{k: stand_ins[k] for k in ecs_secrets(service)}}
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    settings = BACKEND[service]()
    assert settings.environment.value == "production"
    assert settings.host == "0.0.0.0"


def test_the_frontend_reaches_the_services_where_they_listen() -> None:
    """LETSCHAT_AUTH_URL / LETSCHAT_MESSAGE_URL name the service and its LETSCHAT_PORT."""
    for place in ["compose", "ecs"]:
        env = compose_environment("frontend") if place == "compose" else ecs_environment("frontend")
        for service, variable in [
            ("auth", "LETSCHAT_AUTH_URL"),
            ("message", "LETSCHAT_MESSAGE_URL"),
        ]:
            url = urlsplit(env[variable] or "")
            if place == "compose":
                port = compose_environment(service)["LETSCHAT_PORT"]
                host = service
            else:
                # ECS Service Connect: the port mapping's name is the client alias.
                (mapping,) = ecs_container(service)["portMappings"]
                port, host = str(mapping["containerPort"]), mapping["name"]
            assert (url.hostname, str(url.port)) == (host, port), (place, variable)


@pytest.mark.parametrize("place", ["compose", "ecs"])
def test_the_reflex_backend_accepts_the_public_origin(place: str) -> None:
    if place == "compose":
        env, public = compose_environment("frontend"), compose_public_origin()
    else:
        env, public = ecs_environment("frontend"), ecs_public_origin()
    # Reflex refuses event sockets from other origins.
    assert public in (env["LETSCHAT_APP_ORIGINS"] or "").split(",")
    assert origin(env["LETSCHAT_PUBLIC_URL"] or "") == public


def test_the_exported_frontend_calls_the_load_balancer() -> None:
    """The Reflex backend URL baked into the static files is the one public origin."""
    baked = compose()["x-frontend-build"]["args"]["LETSCHAT_REFLEX_API_URL"]
    assert baked == compose_public_origin()
    export = dockerfile("Dockerfile.frontend")["export"]
    assert f"LETSCHAT_REFLEX_API_URL={baked}" in export.all("ARG")
    lb = nginx(LB_CONF)
    assert int(compose()["services"]["lb"]["ports"][0].split(":")[1]) == listen_port(lb)


# --- ports and health checks ----------------------------------------------------------------


def backend_healthcheck() -> list[str]:
    return dockerfile("Dockerfile.backend")["runtime"].healthcheck()


def reflex_healthcheck() -> list[str]:
    return dockerfile("Dockerfile.frontend")["app"].healthcheck()


def test_health_checks_probe_the_health_routes_on_the_configured_port() -> None:
    backend = " ".join(backend_healthcheck())
    assert "127.0.0.1:{os.environ['LETSCHAT_PORT']}/healthz" in backend
    paths = {route.path for route in health_router({}).routes}  # type: ignore[attr-defined]
    assert "/healthz" in paths
    reflex = " ".join(reflex_healthcheck())
    assert "127.0.0.1:{os.environ['LETSCHAT_REFLEX_BACKEND_PORT']}/ping" in reflex
    from reflex_base.constants.event import Endpoint

    assert str(Endpoint.PING) == "/ping"


@pytest.mark.parametrize("service", ["auth", "message", "frontend"])
def test_compose_and_ecs_use_the_images_health_check(service: str) -> None:
    expected = backend_healthcheck() if service in BACKEND else reflex_healthcheck()
    assert compose()["services"][service]["healthcheck"]["test"] == expected
    assert ecs_container(service)["healthCheck"]["command"] == expected


def test_the_static_frontend_health_check_matches_its_server() -> None:
    static = nginx(STATIC_CONF)
    port = listen_port(static)
    url = f"http://127.0.0.1:{port}/healthz"
    stage = dockerfile("Dockerfile.frontend")["static"]
    command = ["CMD", "wget", "-q", "-O", "/dev/null", url]
    assert stage.healthcheck() == command
    assert compose()["services"]["web"]["healthcheck"]["test"] == command
    assert ecs_container("web")["healthCheck"]["command"] == command
    assert stage.all("EXPOSE") == [str(port)]
    (mapping,) = ecs_container("web")["portMappings"]
    assert mapping["containerPort"] == port
    locations = [loc.args for loc in static.one("http").one("server").all("location")]
    assert ("=", "/healthz") in locations


@pytest.mark.parametrize("service", ["auth", "message", "frontend"])
def test_ports_agree_everywhere(service: str) -> None:
    """LETSCHAT_PORT (or the Reflex backend port) = LB upstream = ECS port mapping."""
    variable = "LETSCHAT_PORT" if service in BACKEND else "LETSCHAT_REFLEX_BACKEND_PORT"
    port = int(compose_environment(service)[variable] or 0)
    ((host, upstream_port, params),) = upstream_servers(nginx(LB_CONF))[LB_UPSTREAM[service]]
    assert (host, upstream_port) == (service, port)
    assert "resolve" in params  # replicas and recreated containers are found again
    assert int(ecs_environment(service)[variable]) == port
    (mapping,) = ecs_container(service)["portMappings"]
    assert (mapping["containerPort"], mapping["protocol"]) == (port, "tcp")


def test_images_expose_the_port_they_default_to() -> None:
    runtime = dockerfile("Dockerfile.backend")["runtime"]
    assert runtime.all("EXPOSE") == [runtime.env()["LETSCHAT_PORT"]]
    assert runtime.env()["LETSCHAT_HOST"] == "0.0.0.0"
    app = dockerfile("Dockerfile.frontend")["app"]
    assert app.all("EXPOSE") == [app.env()["LETSCHAT_REFLEX_BACKEND_PORT"]]


@pytest.mark.parametrize("service", ["auth", "message"])
def test_each_backend_container_runs_its_own_module(service: str) -> None:
    command = ["python", "-m", SERVICE_MODULE[service]]
    assert compose()["services"][service]["command"] == command
    assert ecs_container(service)["command"] == command


def test_the_reflex_backend_runs_in_production_mode_alone() -> None:
    command = ["reflex", "run", "--env", "prod", "--backend-only"]
    assert dockerfile("Dockerfile.frontend")["app"].exec_form("CMD") == command
    assert ecs_container("frontend")["command"] == command


def test_compose_starts_services_only_once_their_dependencies_are_healthy() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    assert services["message"]["deploy"]["replicas"] >= 2


# --- the load balancer ----------------------------------------------------------------------

ROUTES = [
    ("/auth/login", "auth", None),
    ("/auth/me", "auth", None),
    ("/users", "auth", None),
    ("/api/conversations", "message", "/"),
    ("/api/conversations/abc/messages", "message", "/"),
    ("/ws", "message", None),
    ("/_event/", "reflex_backend", None),
    ("/ping", "reflex_backend", None),
    ("/_health", "reflex_backend", None),
    ("/_upload", "reflex_backend", None),
    ("/", "static_frontend", None),
    ("/login", "static_frontend", None),
    ("/assets/app-1234.js", "static_frontend", None),
]


@pytest.mark.parametrize(("path", "upstream", "uri"), ROUTES)
def test_the_load_balancer_routes_each_path(path: str, upstream: str, uri: str | None) -> None:
    chosen = route(nginx(LB_CONF), path)
    assert chosen.upstream == upstream
    # A URI part on proxy_pass replaces the matched prefix: /api/x reaches the service as /x.
    assert (chosen.proxy_pass or "").removeprefix(f"http://{upstream}") == (uri or "")


@pytest.mark.parametrize("path", ["/metrics", "/api/metrics"])
def test_the_load_balancer_keeps_metrics_to_the_private_network(path: str) -> None:
    chosen = route(nginx(LB_CONF), path)
    assert chosen.upstream is None, chosen.upstream
    assert [list(d.args) for d in chosen.location.all("return")] == [["404"]]


def test_every_upstream_is_a_compose_service() -> None:
    services = compose()["services"]
    for upstream, servers in upstream_servers(nginx(LB_CONF)).items():
        for host, _, params in servers:
            assert host in services, upstream
            assert "resolve" in params, upstream
    assert nginx(LB_CONF).one("http").all("resolver"), "`resolve` needs a resolver"


@pytest.mark.parametrize("path", ["/ws", "/_event/", "/api/ws"])
def test_websocket_paths_pass_the_upgrade_through(path: str) -> None:
    config = nginx(LB_CONF)
    chosen = route(config, path)
    assert chosen.settings["proxy_http_version"] == "1.1"
    assert chosen.headers["Upgrade"] == "$http_upgrade"
    assert chosen.headers["Connection"] == "$connection_upgrade"
    (upgrade_map,) = [
        m for m in config.one("http").all("map") if m.args[1] == "$connection_upgrade"
    ]
    assert upgrade_map.args[0] == "$http_upgrade"
    assert upgrade_map.one("default").args == ("upgrade",)
    # Idle sockets are kept for the hour the ALB keeps them too (docs/deploy.md).
    assert seconds(chosen.settings["proxy_read_timeout"]) >= 3600
    assert seconds(chosen.settings["proxy_send_timeout"]) >= 3600


def test_every_proxied_location_forwards_host_and_client() -> None:
    config = nginx(LB_CONF)
    for path, _, _ in ROUTES:
        headers = route(config, path).headers
        assert headers["Host"] == "$host", path
        # The edge overwrites what a client claims (the login throttle counts per client).
        assert headers["X-Forwarded-For"] == "$remote_addr", path
        assert headers["X-Forwarded-Proto"] == "$scheme", path


# --- the deploy workflow and the task definitions -------------------------------------------


def expand(text: str, matrix: dict[str, str]) -> str:
    """`${{ matrix.x }}` replaced by this matrix entry's value."""
    return re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m: matrix[m.group(1)], text)


def render_steps() -> list[tuple[str, str, str]]:
    """(task definition file, container name, ECR repository) for every render step."""
    found = []
    for job in workflow("deploy.yml")["jobs"].values():
        matrix = job.get("strategy", {}).get("matrix", {})
        values = [{"service": s} for s in matrix.get("service", [])] or [{}]
        for value in values:
            files: dict[str, str] = {}
            for step in job["steps"]:
                if "amazon-ecs-render-task-definition" not in step.get("uses", ""):
                    continue
                inputs = {key: expand(text, value) for key, text in step["with"].items()}
                source = inputs["task-definition"]
                chained = re.fullmatch(
                    r"\$\{\{ steps\.([\w-]+)\.outputs\.task-definition \}\}", source
                )
                file = files[chained.group(1)] if chained else source
                files[step["id"]] = file
                repository = inputs["image"].rpartition("/")[2].partition(":")[0]
                found.append((file, inputs["container-name"], repository))
    return found


def test_every_container_is_rendered_with_the_image_built_for_it() -> None:
    rendered = render_steps()
    containers = {
        (f"deploy/ecs/{name}.json", container["name"], container["image"])
        for name, definition in task_definitions().items()
        for container in definition["containerDefinitions"]
    }
    # The placeholder image in each task definition names the ECR repository it is deployed from.
    assert set(rendered) == containers
    built = set()
    for job in workflow("deploy.yml")["jobs"].values():
        text = str(job)
        built |= set(re.findall(r"/(letschat-[a-z-]+):\$\{\{ github\.sha \}\}", text))
        built |= {
            entry["repository"]
            for entry in job.get("strategy", {}).get("matrix", {}).get("include", [])
        }
    assert {repository for _, _, repository in rendered} <= built


def _installs(name: str, stage: str) -> tuple[set[str], list[str]]:
    """What a build stage copies in (sources) and its pip install commands."""
    built = dockerfile(name)[stage]
    copied = {rest.split()[0].rstrip("/") for rest in built.all("COPY") if "--from=" not in rest}
    installs = [" ".join(run.split()) for run in built.all("RUN") if "pip install" in run]
    return copied, installs


def test_the_frontend_image_installs_the_web_app_and_the_protocol_only() -> None:
    copied, installs = _installs("Dockerfile.frontend", "deps")
    assert "letschat_protocol" in copied
    assert installs == ['/opt/venv/bin/pip install ".[web]"']
    for stage in dockerfile("Dockerfile.frontend").values():
        assert not [rest for rest in stage.all("COPY") if "backend_services" in rest], stage.name


def test_the_backend_image_installs_the_services_and_the_protocol() -> None:
    copied, installs = _installs("Dockerfile.backend", "build")
    assert {"backend_services", "letschat_protocol"} <= copied
    assert "letschat_app" not in copied
    assert [i for i in installs if '".[services]"' in i] == installs
    assert len(installs) == 1


def test_frontend_image_targets_exist() -> None:
    stages = dockerfile("Dockerfile.frontend")
    for job in workflow("deploy.yml")["jobs"].values():
        for entry in job.get("strategy", {}).get("matrix", {}).get("include", []):
            assert entry["target"] in stages
    for service in ["frontend", "web"]:
        assert compose()["services"][service]["build"]["target"] in stages


def test_task_definitions_are_fargate_ready() -> None:
    # Fargate's CPU units -> allowed memory (MiB).
    allowed = {
        "256": {512, 1024, 2048},
        "512": set(range(1024, 4097, 1024)),
        "1024": set(range(2048, 8193, 1024)),
        "2048": set(range(4096, 16385, 1024)),
        "4096": set(range(8192, 30721, 1024)),
    }
    for name, definition in task_definitions().items():
        assert definition["family"] == f"letschat-{name}"
        assert definition["networkMode"] == "awsvpc"
        assert definition["requiresCompatibilities"] == ["FARGATE"]
        assert int(definition["memory"]) in allowed[definition["cpu"]], name
        for container in definition["containerDefinitions"]:
            log = container["logConfiguration"]
            assert log["logDriver"] == "awslogs"
            assert {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(
                log["options"]
            )
            assert container["healthCheck"]["command"][0] == "CMD"
            assert container["essential"] is True


# --- the build context ----------------------------------------------------------------------


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a pattern also matches
    everything below a matching directory."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = (
            re.escape(pattern)
            .replace(r"\*\*/", "(.*/)?")
            .replace(r"\*\*", ".*")
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
        )
        if re.fullmatch(f"{regex}(/.*)?", path):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "letschat_app/.env",
        ".env.production",
        ".data/secantus/db",
        ".venv/bin/python",
        "node_modules/x/index.js",
        ".web/build/client/index.html",
        "test-artifacts/logs/auth.log",
        "backend_services/__pycache__/web.cpython-311.pyc",
        ".git/config",
        ".tools/node/bin/node",
        "tests/unit/test_config.py",
        "deploy/ecs/auth.json",
    ],
)
def test_the_build_context_leaves_out(path: str) -> None:
    assert dockerignore_excludes(path)


def test_the_build_context_holds_every_copied_source() -> None:
    for name in ["Dockerfile.backend", "Dockerfile.frontend"]:
        for stage in dockerfile(name).values():
            for rest in stage.all("COPY"):
                if "--from=" in rest:
                    continue
                *sources, _ = [word for word in rest.split() if not word.startswith("--")]
                for source in sources:
                    assert (ROOT / source).exists(), (name, source)
                    probe = source.rstrip("/")
                    if (ROOT / probe).is_dir():
                        files = (ROOT / probe).rglob("*.*")
                        first = next(p for p in files if "__pycache__" not in p.parts)
                        probe = str(first.relative_to(ROOT))
                    assert not dockerignore_excludes(probe), (name, source)
