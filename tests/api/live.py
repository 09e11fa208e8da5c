"""``giftq api`` served for real: uvicorn in a subprocess on a test's database, for tests
that need real sockets (a browser, many concurrent clients).

:func:`live_api` starts the server with the test secrets (so that cards issued by the
test process open in the server) and the in-process broker, waits for ``/v1/health`` and
yields its base URL; the server's log is kept at ``log_path`` for the test to read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import TEST_KEYS, TEST_PEPPER

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_api(database_url: str, data_dir: Path, log_path: Path, **settings: str) -> Iterator[str]:
    """Serve the API on ``database_url``; ``settings`` are GIFTQ_* names without the prefix."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_") or k.startswith("GIFTQ_TEST_")}
    env.update(
        GIFTQ_ENV="test",
        GIFTQ_DATA_DIR=str(data_dir),
        GIFTQ_DATABASE_URL=database_url,
        GIFTQ_BROKER_URL="memory://",
        GIFTQ_CODE_PEPPER=TEST_PEPPER,
        GIFTQ_CODE_KEYS=TEST_KEYS,
        GIFTQ_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"GIFTQ_{name.upper()}": value for name, value in settings.items()})
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from api.cli import serve_app; serve_app(prog_name='giftq api')",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server, log_path)
        yield base
    finally:
        server.terminate()
        server.wait(20)


def _wait_ready(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"giftq api exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"giftq api did not become ready:\n{log_path.read_text()}")
