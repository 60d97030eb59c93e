"""Real PostgreSQL, Redis and Dovecot (IMAP) servers for the test session, on 127.0.0.1.

Each gets its own data directory under a temporary folder and a free port. When
SWITCHBOARD_TEST_POSTGRES_URL / SWITCHBOARD_TEST_REDIS_URL /
SWITCHBOARD_TEST_DOVECOT_DIR + SWITCHBOARD_TEST_DOVECOT_PORT are set, those servers are
used instead. A server that cannot be started is an error, never a skip.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    """A test service could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _terminate(pidfile: Path, name: str) -> None:
    """SIGTERM the daemon named by `pidfile` and wait until it is gone, so its port and
    directory are free when this returns."""
    if not pidfile.exists():
        return
    with contextlib.suppress(ProcessLookupError, ValueError):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.05)
        raise ServiceError(f"{name} {pid} did not stop within 30s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"PostgreSQL's {name} not found: apt-get install postgresql")
    return path


@dataclass
class Postgres:
    """A private PostgreSQL server."""

    root: Path
    port: int
    # Tests trade durability for speed; benchmarks measure the real thing.
    durable: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        # initdb and postgres refuse to run as root: run them as the postgres user.
        command = (
            args
            if os.geteuid() != 0
            else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in args)]
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        data = self.root / "pgdata"
        data.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        os.chmod(data, 0o700)
        self._run(
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {data} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(data / "log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        )
        _wait_port(self.port)

    def stop(self) -> None:
        data = self.root / "pgdata"
        if (data / "postmaster.pid").exists():
            self._run([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])


@dataclass
class Redis:
    """A private Redis server."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found: apt-get install redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.root / "pid"),
                "--dir",
                str(self.root),
                "--logfile",
                str(self.root / "log"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"redis-server failed: {result.stdout}{result.stderr}")
        _wait_port(self.port)

    def stop(self) -> None:
        _terminate(self.root / "pid", "redis-server")


@dataclass
class Dovecot:
    """A private Dovecot IMAP server: passwd-file users, Maildir, plain text on 127.0.0.1.

    Users can be added while it runs (`add_user`).
    """

    root: Path
    port: int

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def users_dir(self) -> Path:
        # One passwd-file per user: Dovecot notices a changed passwd-file only a second
        # later, but a new file at once, so a user added by a test can log in right away.
        return self.root / "users"

    def _config(self) -> str:
        root = self.root
        if os.geteuid() == 0:
            # Login processes must not run as root, nor mail processes as uid 0.
            login_user, internal_user = "dovenull", "dovecot"
            first_uid = 100
        else:
            login_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
            first_uid = os.geteuid()
        return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {first_uid}
mail_location = maildir:{root}/mail/%u/Maildir
mail_max_userip_connections = 200
passdb {{
  driver = passwd-file
  args = {self.users_dir}/%u
}}
userdb {{
  driver = static
  args = uid={internal_user} gid={internal_user} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    def start(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise ServiceError("dovecot not found: apt-get install dovecot-imapd")
        self.root.mkdir(parents=True, exist_ok=True)
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir(exist_ok=True)
        self.root.chmod(0o755)  # the mail and auth processes must reach their files inside
        self.config_file.write_text(self._config())
        self.users_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root / "mail", "dovecot", "dovecot")
        # Not captured through pipes: the daemon inherits them and would hold them open.
        output = self.root / "start.log"
        with output.open("w") as sink:
            result = subprocess.run(
                [binary, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            raise ServiceError(f"dovecot failed: {output.read_text()}")
        _wait_port(self.port)

    def stop(self) -> None:
        _terminate(self.root / "run" / "master.pid", "dovecot")

    def add_user(self, name: str, password: str) -> None:
        """Adds a mailbox user; its Maildir is created on first login."""
        if not name.replace("-", "").replace("_", "").isalnum() or not password.isprintable():
            raise ValueError("use letters, digits, - and _ in test user names")
        if ":" in password:
            raise ValueError("a passwd-file password cannot hold ':'")
        passwd = self.users_dir / name
        passwd.write_text(f"{name}:{{PLAIN}}{password}\n")
        passwd.chmod(0o644)

    def doveadm(self, *args: str) -> str:
        """Runs `doveadm` against this server's configuration; returns its output."""
        binary = shutil.which("doveadm") or "/usr/bin/doveadm"
        result = subprocess.run(
            [binary, "-c", str(self.config_file), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"doveadm {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout


def _start_all(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the postgres user must reach its data directory inside
    postgres = Postgres(root / "postgres", free_port())
    redis = Redis(root / "redis", free_port())
    dovecot = Dovecot(root / "dovecot", free_port())
    postgres.start()
    try:
        redis.start()
        dovecot.start()
    except ServiceError:
        _stop_all(root)
        raise
    # Shell assignments for `eval`: the test fixtures use servers named here.
    print(f"export SWITCHBOARD_TEST_POSTGRES_URL={postgres.url}")
    print(f"export SWITCHBOARD_TEST_REDIS_URL={redis.url}")
    print(f"export SWITCHBOARD_TEST_DOVECOT_DIR={dovecot.root}")
    print(f"export SWITCHBOARD_TEST_DOVECOT_PORT={dovecot.port}")


def _stop_all(root: Path) -> None:
    Postgres(root / "postgres", 0).stop()
    Redis(root / "redis", 0).stop()
    Dovecot(root / "dovecot", 0).stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.services start|stop DIR`: the servers for a whole CI run."""
    parser = argparse.ArgumentParser(prog="python -m tests.services", description=main.__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("root", type=Path, help="a directory for the servers' data")
    args = parser.parse_args(argv)
    try:
        (_start_all if args.action == "start" else _stop_all)(args.root)
    except ServiceError as error:
        print(f"tests.services: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
