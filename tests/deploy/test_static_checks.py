"""The static checkers of scripts/check-deploy, one test each; any finding fails. Then the
security headers nginx sends with the exported frontend, read from its config.

The tools come from the dev extras (scripts/setup); a missing tool fails rather than skips, so a
machine without them cannot pass silently.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import crossplane
import jsonschema
import pytest

from tests.deploy.conftest import (
    BIN,
    LB_CONF,
    ROOT,
    STATIC_CONF,
    WORKFLOWS,
    Directive,
    dockerfile,
    nginx,
    route,
)

WORKFLOW_FILES = sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.yml"))
SHELL_SCRIPTS = [
    "scripts/check-deploy",
    "scripts/container-test",
    "deploy/smoke-test",
    "deploy/ecs/check-placeholders",
]


def run(*command: str) -> None:
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is missing: run scripts/setup (it is in the dev extras)"
    # actionlint runs shellcheck on `run:` blocks when it finds it on PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(tool), *command[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"


def test_hadolint_finds_nothing_in_the_dockerfiles() -> None:
    run("hadolint", "Dockerfile.backend", "Dockerfile.frontend")


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    assert WORKFLOW_FILES == [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]
    run("actionlint", *WORKFLOW_FILES)


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    run("zizmor", "--offline", "--no-progress", ".github/workflows/")


def test_workflows_match_the_github_workflow_schema() -> None:
    run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOW_FILES)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")


def test_task_definitions_match_register_task_definition_input(tmp_path: Path) -> None:
    schema = tmp_path / "ecs-task-definition.schema.json"
    with schema.open("w") as out:
        subprocess.run(
            [sys.executable, "deploy/ecs/schema.py"], cwd=ROOT, stdout=out, check=True, timeout=60
        )
    files = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "deploy/ecs").glob("*.json"))
    assert files == ["deploy/ecs/auth.json", "deploy/ecs/frontend.json", "deploy/ecs/message.json"]
    run("check-jsonschema", "--schemafile", str(schema), *files)


def test_the_task_definition_schema_rejects_mistakes() -> None:
    """The generated schema is strict: unknown keys, wrong types, unknown enum values."""
    spec = importlib.util.spec_from_file_location("ecs_schema", ROOT / "deploy/ecs/schema.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    validator = jsonschema.Draft202012Validator(module.task_definition_schema())
    good = json.loads((ROOT / "deploy/ecs/auth.json").read_text())
    assert list(validator.iter_errors(good)) == []
    container = good["containerDefinitions"][0]
    for mistake in (
        {**good, "networkMode": "bridged"},
        {**good, "containerDefinitions": [{**container, "portMapping": []}]},
        {**good, "containerDefinitions": [{**container, "essential": "yes"}]},
    ):
        assert list(validator.iter_errors(mistake)), mistake


@pytest.mark.parametrize("path", ["deploy/nginx/nginx.conf", "deploy/nginx/static.conf"])
def test_nginx_configs_parse(path: str) -> None:
    assert nginx(ROOT / path).one("http").all("server")


def test_shellcheck_finds_nothing_in_the_deploy_scripts() -> None:
    run("shellcheck", *SHELL_SCRIPTS)


# --- security headers of the exported frontend ------------------------------------------------

# What every response of the static server carries, errors included (`always`).
SECURITY_HEADERS = {
    "Content-Security-Policy": "$content_security_policy",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Where the image puts the policy deploy/nginx/csp_hashes.py writes (Dockerfile.frontend).
CSP_CONF = "/etc/nginx/csp.conf"


def _locations(block: Directive, levels: list[Directive]) -> Iterator[list[Directive]]:
    """The levels (http, server, location, nested location, ...) down to every location."""
    for location in block.all("location"):
        yield [*levels, location]
        yield from _locations(location, [*levels, location])


def header_findings(config: Directive) -> list[str]:
    """Locations that would not send every security header with `always`. nginx inherits
    add_header from the enclosing level only into a level that has no add_header at all."""
    http = config.one("http")
    server = http.one("server")
    findings = []
    for levels in [[http, server], *_locations(server, [http, server])]:
        sent: dict[str, tuple[str, ...]] = {}
        for level in reversed(levels):
            if level.all("add_header"):
                sent = {d.args[0]: d.args[1:] for d in level.all("add_header")}
                break
        where = " ".join(levels[-1].args) or "server"
        for name, value in SECURITY_HEADERS.items():
            if sent.get(name) != (value, "always"):
                findings.append(f"{where}: {name} {sent.get(name)}")
    return findings


def test_every_location_of_the_static_server_sends_the_security_headers() -> None:
    config = nginx(STATIC_CONF)
    assert header_findings(config) == []
    server = config.one("http").one("server")
    assert [d.args for d in server.all("include")] == [(CSP_CONF,)]


def test_the_header_check_sees_a_nested_location_that_drops_them(tmp_path: Path) -> None:
    """The nginx pitfall: one add_header in a location and the server's are gone there."""
    path = tmp_path / "nested.conf"
    headers = "".join(f"add_header {k} {v} always; " for k, v in SECURITY_HEADERS.items())
    path.write_text(
        f"events {{}} http {{ server {{ {headers}"
        f"location / {{ location /nested/ {{ add_header Cache-Control no-cache; }} }} "
        f"location /never/ {{ add_header Referrer-Policy same-origin; }} }} }}"
    )
    findings = header_findings(nginx(path))
    assert {f.split(":")[0] for f in findings} == {"/nested/", "/never/"}, findings
    assert len([f for f in findings if f.startswith("/never/")]) == 4, findings


def policy_directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} given twice"
        parsed[name] = sources
    return parsed


def sha256_source(script: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


def test_the_policy_nginx_sends_is_strict_and_allows_the_exports_inline_scripts(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    (site / "login").mkdir(parents=True)
    scripts = ["window.__reactRouterContext = {};", "\n  import('/assets/entry.js');\n"]
    (site / "index.html").write_text(
        f'<!doctype html><head><script src="/letschat.js"></script><script>{scripts[0]}</script>'
        f'</head><body><script type="module" async="">{scripts[1]}</script></body>'
    )
    (site / "login" / "index.html").write_text(f"<script>{scripts[0]}</script>")
    output = tmp_path / "csp.conf"
    env = {**os.environ, "LETSCHAT_REFLEX_API_URL": "https://chat.example.com"}
    command = [
        sys.executable,
        str(ROOT / "deploy" / "nginx" / "csp_hashes.py"),
        str(site),
        str(output),
    ]
    subprocess.run(command, env=env, check=True, timeout=120, capture_output=True)

    parsed = crossplane.parse(str(output), single=True, check_ctx=False, check_args=True)
    assert parsed["status"] == "ok", parsed["errors"]
    ((variable, policy),) = [tuple(d["args"]) for d in parsed["config"][0]["parsed"]]
    assert variable == SECURITY_HEADERS["Content-Security-Policy"]
    found = policy_directives(policy)
    assert found["object-src"] == ["'none'"]
    assert found["base-uri"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"]
    assert found["form-action"] == ["'self'"]
    assert found["default-src"] == ["'self'"]
    assert sorted(found["img-src"]) == sorted(["'self'", "data:", "blob:"])
    assert found["connect-src"] == ["'self'", "https://chat.example.com", "wss://chat.example.com"]
    hashes = [source for source in found["script-src"] if source.startswith("'sha256-")]
    assert sorted(hashes) == sorted(sha256_source(script) for script in scripts)
    others = [source for source in found["script-src"] if source not in hashes]
    # 'unsafe-eval' for the scripts Reflex's event handlers send (letschat_app/csp.py).
    assert others == ["'self'", "'unsafe-eval'"]
    assert not any(re.search(r"unsafe-inline|\*|data:|https?:", s) for s in found["script-src"])

    # A folder with no pages is a mistake in the build, not a policy that allows no script.
    (tmp_path / "empty").mkdir()
    command[-2] = str(tmp_path / "empty")
    refused = subprocess.run(command, env=env, check=False, timeout=120, capture_output=True)
    assert refused.returncode != 0


def test_the_static_image_writes_the_policy_where_nginx_reads_it() -> None:
    stages = dockerfile("Dockerfile.frontend")
    (export,) = [
        " ".join(run.split()) for run in stages["export"].all("RUN") if "reflex export" in run
    ]
    # After the export, with the backend URL the export baked in.
    policy_step = (
        'LETSCHAT_REFLEX_API_URL="${LETSCHAT_REFLEX_API_URL}" '
        "python deploy/nginx/csp_hashes.py /srv/site /srv/csp.conf"
    )
    assert export.endswith(f"&& {policy_step}"), export
    assert "deploy/nginx/csp_hashes.py deploy/nginx/" in stages["export"].all("COPY")
    copies = stages["static"].all("COPY")
    assert f"--from=export /srv/csp.conf {CSP_CONF}" in copies
    assert "--from=export /srv/site /usr/share/nginx/html" in copies


@pytest.mark.parametrize("path", ["/", "/login"])
def test_the_load_balancer_passes_the_page_headers_through(path: str) -> None:
    """Pages come from the static server with its headers; the load balancer must neither hide
    them nor add a second policy (browsers would enforce both)."""
    assert route(nginx(LB_CONF), path).upstream == "static_frontend"
    names = {"proxy_hide_header", "add_header", "more_set_headers", "more_clear_headers"}

    def touched(block: Directive) -> Iterator[str]:
        for directive in block.block:
            if directive.name in names and directive.args:
                yield directive.args[0].lower()
            yield from touched(directive)

    assert not {name.lower() for name in SECURITY_HEADERS} & set(touched(nginx(LB_CONF)))
