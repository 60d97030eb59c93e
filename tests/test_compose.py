"""Packaging checked statically: docker-compose.yml, the Dockerfile, .ci/run and README.md.

No Docker engine runs here, so these tests check what can go stale without one: every
command is a real `switchboard` command, every SWITCHBOARD_* name is a real setting, no
secret is written in the files, and the health checks are there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from web.cli import build_parser
from web.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SERVICES = {"postgres", "redis", "migrate", "web", "worker"}
# A compose interpolation of one variable: ${NAME}, ${NAME:?message}, ${NAME:-default}.
REFERENCE = re.compile(r"\$\{[A-Z][A-Z0-9_]*(?::?[?-][^}]*)?\}")
REQUIRED_REFERENCE = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _assert_switchboard_command(argv: list[str]) -> None:
    assert argv[0] == "switchboard", argv
    # Parsing for real also checks the options; argparse exits on anything unknown.
    args = build_parser().parse_args(argv[1:])
    assert callable(args.handler), argv


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def test_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


def test_commands_are_real_subcommands(services: dict[str, dict[str, Any]]) -> None:
    expected = {"migrate": "migrate", "web": "web", "worker": "worker"}
    for name, subcommand in expected.items():
        argv = _argv(services[name]["command"])
        _assert_switchboard_command(argv)
        assert argv[1] == subcommand


def test_switchboard_variables_are_settings(services: dict[str, dict[str, Any]]) -> None:
    used = {
        key
        for service in services.values()
        for key in _environment(service)
        if key.startswith("SWITCHBOARD_")
    }
    assert used, "the app services take their configuration from SWITCHBOARD_* variables"
    fields = {f"SWITCHBOARD_{name.upper()}" for name in Settings.model_fields}
    assert used - fields == set()


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if "SECRET" in key or "PASSWORD" in key:
                assert REFERENCE.fullmatch(value), f"{name}: {key} must be a ${{...}} reference"
            if key.endswith("DATABASE_URL"):
                password = make_url(value).password
                assert password is not None and REFERENCE.fullmatch(str(password)), (
                    f"{name}: {key} must take its password from a ${{...}} reference"
                )
    app_env = _environment(services["web"])
    # Required, not defaulted: production refuses to start on a missing or weak key.
    assert REQUIRED_REFERENCE.fullmatch(app_env["SWITCHBOARD_SECRET_KEY"])
    assert REQUIRED_REFERENCE.fullmatch(_environment(services["postgres"])["POSTGRES_PASSWORD"])
    assert app_env["SWITCHBOARD_ENV"] == "production"
    assert app_env["SWITCHBOARD_HOST"] == "0.0.0.0"
    assert app_env["SWITCHBOARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert app_env["SWITCHBOARD_REDIS_URL"].startswith("redis://")


def test_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "web"):
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
    assert "pg_isready" in " ".join(_argv(services["postgres"]["healthcheck"]["test"]))
    assert "ping" in _argv(services["redis"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(_argv(services["web"]["healthcheck"]["test"]))


def test_web_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    web = services["web"]
    assert "container_name" not in web
    for port in web.get("ports", []):
        # "8080" or {"target": 8080}: no fixed host port for replicas to fight over.
        if isinstance(port, dict):
            assert "published" not in port
        else:
            assert ":" not in str(port), port
    ready = {"postgres": "service_healthy", "redis": "service_healthy",
             "migrate": "service_completed_successfully"}  # fmt: skip
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert {key: value["condition"] for key, value in depends.items()} == ready


def test_data_directory_is_shared(services: dict[str, dict[str, Any]]) -> None:
    mounts = []
    for name in ("web", "worker"):
        data_dir = _environment(services[name])["SWITCHBOARD_DATA_DIR"]
        volume = next(v for v in services[name]["volumes"] if v.split(":")[1] == data_dir)
        mounts.append(volume)
    assert mounts[0] == mounts[1]


def _dockerfile() -> list[str]:
    # Join continuation lines, drop comments.
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile() -> None:
    lines = _dockerfile()
    instructions = {line.split()[0].upper(): line for line in lines}
    assert instructions["FROM"].split()[1].startswith("python:3.11-slim")
    assert instructions["EXPOSE"].split()[1:] == ["8080"]
    assert instructions["USER"].split()[1] not in ("root", "0")
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert any(line.startswith("RUN pip install") for line in lines)
    cmd = json.loads(instructions["CMD"].removeprefix("CMD"))
    assert cmd == ["switchboard", "serve"]
    _assert_switchboard_command(cmd)


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", "switchboard.db*", "switchboard-data"} <= set(ignored)
    # The build needs these (README.md is the package's long description).
    assert "README.md" not in ignored
    assert "pyproject.toml" not in ignored


def test_ci_script() -> None:
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "set -euo pipefail" in text
    for step in ("ruff check .", "mypy", "pytest"):
        assert step in text


def test_readme_documents_every_setting_and_command() -> None:
    readme = (REPO / "README.md").read_text()
    for field in Settings.model_fields:
        assert f"`SWITCHBOARD_{field.upper()}`" in readme, field
    commands = ("serve", "web", "worker", "migrate", "reprocess", "user create", "token create")
    for command in commands:
        assert f"`switchboard {command}" in readme, command
    assert "pip install -e . && switchboard serve" in readme
    assert "bash .ci/run" in readme
