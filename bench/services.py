"""Private servers for a run that restarts them: a PostgreSQL cluster and a Redis of its own.

A fault run stops and starts its database and its broker; it must never touch the
servers anything else on the machine uses. So it makes its own: ``initdb`` into a
folder, ``pg_ctl`` on a port of its own, and a ``redis-server`` with an append-only
file in a folder of its own. Both are gone when the folder is.

PostgreSQL refuses to run as root: as root, its commands run as the ``postgres`` user
(which then owns the cluster's folder).
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis


def restartable_port() -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection
    takes it while its server is down between a stop and a start."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class ServiceError(RuntimeError):
    """A private server could not be made, started or stopped."""


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise ServiceError(f"{name} is not installed (Debian/Ubuntu: apt-get install postgresql)")
    return candidates[0]


def postgres_available() -> bool:
    try:
        _postgres_bin("initdb")
    except ServiceError:
        return False
    return shutil.which("redis-server") is not None


class PostgresCluster:
    """A PostgreSQL cluster in ``directory``, listening on 127.0.0.1:``port`` only.

    As root, the cluster goes in a folder of its own under the system's temporary folder
    instead, owned by ``postgres``: the server must reach its folder, and a private
    temporary folder (0700, which test runners reset) would not let it. :meth:`remove`
    deletes it.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self._own_folder = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="giftq-pg-")) if self._own_folder else directory
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgresql.log"
        self.port = port or restartable_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/giftq"
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self._as = {"user": account.pw_uid, "group": account.pw_gid}

    def _run(self, *command: str) -> None:
        # Output to a file, never a pipe: the server that pg_ctl starts would inherit the
        # pipe and hold it open, and reading it to its end would wait for the server to exit.
        with (self.directory / "pg_ctl.out").open("a+") as out:
            start = out.tell()
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False, **self._as)
            out.seek(start)
            if done.returncode:
                raise ServiceError(f"{Path(command[0]).name} failed:\n{out.read()}")

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        self.start()
        self._run(
            _postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "giftq"
        )

    def start(self) -> None:
        # fsync off: a power cut is not among the faults; a clean restart (``-m fast``)
        # writes everything out at its shutdown checkpoint whatever this says.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c max_connections=200 -c log_min_messages=warning"
        )
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "start",
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is cut, as when PostgreSQL is restarted."""
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-m",
            "fast",
            "-w",
            "restart",
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop it and delete its folder, when it made one of its own."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.directory, ignore_errors=True)


class RedisServer:
    """A ``redis-server`` with an append-only file, restartable on the same port and folder."""

    def __init__(self, directory: Path, port: int | None = None, *, appendfsync: str = "everysec") -> None:
        self.directory = directory
        self.port = port or restartable_port()
        self.appendfsync = appendfsync
        """``always`` loses nothing even to a kill; ``everysec`` (Redis's default) a second at most."""
        self.log_path = directory / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise ServiceError(f"redis-server did not start; see {self.log_path}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as a restart does: Redis writes out its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def restart(self, down_for: float = 0.3) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
