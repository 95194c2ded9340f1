"""The static checkers of scripts/check-deploy, one test each; any finding fails.

The tools come from the dev extras (scripts/setup); a missing tool fails rather than skips, so a
machine without them cannot pass silently.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.conftest import BIN, ROOT, WORKFLOWS, nginx

WORKFLOW_FILES = sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.yml"))
SHELL_SCRIPTS = ["scripts/check-deploy", "deploy/smoke-test", "deploy/ecs/check-placeholders"]


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
