"""The `switchboard` command line, run as a real process (`python -m web.cli`)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import free_port
from web.cli import CHATTY_LOGGERS, _configure_logging, build_parser, main
from web.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# Generous: only there so a broken server fails the test instead of hanging it.
DEADLINE = 120.0


def _env(**settings: str) -> dict[str, str]:
    """This environment without any SWITCHBOARD_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["PYTHONPATH"] = str(REPO)
    env.update({f"SWITCHBOARD_{k.upper()}": v for k, v in settings.items()})
    return env


def switchboard(
    *args: str, env: Mapping[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        env=dict(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """A migrated database (SQLite and PostgreSQL) and a private data directory."""
    return _env(database_url=database_url, data_dir=str(tmp_path / "data"))


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [
        [],
        ["serve"],
        ["web"],
        ["worker"],
        ["migrate"],
        ["reprocess"],
        ["user"],
        ["user", "create"],
        ["token"],
        ["token", "create"],
    ]
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        assert "usage: switchboard" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["inspect", "email"], ["user"], ["token", "delete"]])
def test_unknown_or_incomplete_command_is_a_usage_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(command)
    assert exited.value.code == 2
    assert "usage: switchboard" in capsys.readouterr().err


def test_user_and_token(cli_env: dict[str, str], tmp_path: Path) -> None:
    migrated = switchboard("migrate", env=cli_env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert re.fullmatch(r"database \S+ is at revision \w+\n", migrated.stdout)

    created = switchboard(
        "user", "create", "--email", "Ann@Example.com", "--password", "s3cret-pw",
        "--role", "admin", "--name", "Ann",
        env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"created admin ann@example\.com \(id [0-9a-f-]{36}\)\n", created.stdout)

    token = switchboard(
        "token", "create", "--email", "ann@example.com", "--name", "ci", env=cli_env, cwd=tmp_path
    )
    assert token.returncode == 0, token.stderr
    assert token.stdout.startswith("API token for ann@example.com: ")
    assert token.stdout.split()[-1].startswith("sb_")

    duplicate = switchboard(
        "user", "create", "--email", "ANN@example.com", "--password", "other-pw",
        "--role", "agent",
        env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert duplicate.returncode == 1
    assert duplicate.stdout == ""
    assert "a user with email ann@example.com already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr

    # Without --password and without a terminal, the password is one line of stdin.
    piped = switchboard(
        "user", "create", "--email", "bob@example.com", "--role", "agent",
        env=cli_env, cwd=tmp_path, stdin="piped-password\n",
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("created agent bob@example.com ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "create", "--email", "x@example.com", "--password", "short", "--role", "agent"],
         "at least 8 characters"),
        (["user", "create", "--email", "nobody", "--password", "long enough", "--role", "agent"],
         "invalid email"),
        (["token", "create", "--email", "ghost@example.com"], "no user with email"),
    ],
)  # fmt: skip
def test_command_errors_are_clear(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = switchboard(*args, env=cli_env, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["token", "create", "--email", "ann@example.com"], ["web"]], ids=["token", "web"]
)
def test_unmigrated_database_is_explained(tmp_path: Path, args: list[str]) -> None:
    env = _env(database_url=f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", port=str(free_port()))
    result = switchboard(*args, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "switchboard migrate" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": "eighty"}, "SWITCHBOARD_PORT"),
        ({"database_url": "mysql://x/y"}, "SWITCHBOARD_DATABASE_URL"),
        ({"log_level": "LOUD"}, "SWITCHBOARD_LOG_LEVEL"),
    ],
)
def test_bad_configuration_exits_2(tmp_path: Path, settings: dict[str, str], message: str) -> None:
    result = switchboard("migrate", env=_env(**settings), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_a_missing_secret_key(tmp_path: Path) -> None:
    env = _env(env="production", port=str(free_port()))
    result = switchboard("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "SWITCHBOARD_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "switchboard.db").exists()  # refused before touching anything


# --- long-running commands ------------------------------------------------------------


@dataclass
class Running:
    """A `switchboard` process whose output goes to files (no pipe can fill up and block)."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text()

    def wait_for_line(self) -> str:
        """The first line printed, once the process has printed it."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            text = self.output()
            if "\n" in text:
                return text.split("\n", 1)[0]
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no output; stderr:\n{self.stderr.read_text()}")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(*args: str, env: Mapping[str, str], cwd: Path) -> Running:
        number = len(started)
        out, err = tmp_path / f"out{number}.txt", tmp_path / f"err{number}.txt"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "web.cli", *args],
                env=dict(env),
                cwd=cwd,
                stdout=stdout,
                stderr=stderr,
            )
        running = Running(process, out, err)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait_healthy(url: str, running: Running) -> dict[str, object]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert running.process.poll() is None, running.stderr.read_text()
        try:
            status, body = _get(url + "/healthz")
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url}/healthz never answered 200; stderr:\n{running.stderr.read_text()}")


def test_serve_with_no_configuration(tmp_path: Path, start: Callable[..., Running]) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    port = free_port()
    env = _env(port=str(port))
    url = f"http://127.0.0.1:{port}"

    server = start("serve", env=env, cwd=home)
    line = server.wait_for_line()
    login = re.fullmatch(
        rf"Switchboard is running at {re.escape(url)} — log in as admin@localhost "
        r"with password (\S+) \(shown once\)",
        line,
    )
    assert login is not None, line
    assert _wait_healthy(url, server)["status"] == "ok"
    assert (home / "switchboard.db").is_file()

    # A token made by the CLI works against the running server (same SQLite file).
    token = switchboard("token", "create", "--email", "admin@localhost", env=env, cwd=home)
    assert token.returncode == 0, token.stderr
    assert _get(url + "/api/v1/channels", token.stdout.split()[-1])[0] == 200
    assert _get(url + "/api/v1/channels")[0] == 401

    assert server.terminate() == 0, server.stderr.read_text()
    assert "Traceback" not in server.stderr.read_text()

    # The admin exists now: the second start only says where it runs.
    again = start("serve", env=env, cwd=home)
    assert again.wait_for_line() == f"Switchboard is running at {url}"
    _wait_healthy(url, again)
    assert again.terminate() == 0, again.stderr.read_text()


def test_web_and_worker_roles(
    cli_env: dict[str, str], tmp_path: Path, start: Callable[..., Running]
) -> None:
    port = free_port()
    env = {**cli_env, "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_ADMIN_EMAIL": "boss@example.com",
           "SWITCHBOARD_ADMIN_PASSWORD": "configured-pw"}  # fmt: skip
    worker = start("worker", env=env, cwd=tmp_path)
    web = start("web", env=env, cwd=tmp_path)
    assert worker.wait_for_line() == "Switchboard worker is running"
    assert web.wait_for_line() == (
        f"Switchboard web is running at http://127.0.0.1:{port} — log in as boss@example.com "
        "with the password from SWITCHBOARD_ADMIN_PASSWORD"
    )
    assert _wait_healthy(f"http://127.0.0.1:{port}", web)["status"] == "ok"
    assert web.terminate() == 0, web.stderr.read_text()
    assert worker.terminate() == 0, worker.stderr.read_text()


def test_reprocess(cli_env: dict[str, str], tmp_path: Path) -> None:
    migrated = switchboard("migrate", env=cli_env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    result = switchboard("reprocess", "--all", env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "reprocessed 0 stored payload(s): 0 ingested, 0 still flagged, 0 skipped\n"
    )
    unknown = switchboard("reprocess", "--channel", str(uuid.uuid4()), env=cli_env, cwd=tmp_path)
    assert unknown.returncode == 1 and "no channel with id" in unknown.stderr


@pytest.mark.parametrize(("level", "heard"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_twilios_request_logging_is_heard_only_when_debugging(level: str, heard: bool) -> None:
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    before = [chatty.level for chatty in loggers]
    try:
        for chatty in loggers:
            chatty.setLevel(logging.NOTSET)
        _configure_logging(Settings(log_level=level))
        # Debugging, they follow the root logger; else only their warnings pass.
        wanted = logging.NOTSET if heard else logging.WARNING
        assert [chatty.level for chatty in loggers] == [wanted] * len(loggers)
    finally:
        for chatty, saved in zip(loggers, before, strict=True):
            chatty.setLevel(saved)
