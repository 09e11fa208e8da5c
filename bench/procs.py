"""What Linux's ``/proc`` says about the run's processes: children, memory, sockets.

A fault run kills a Celery pool child (not the worker), the one sending a batch when
the relay says so: it finds the process that owns the relay connection's local port.
It samples the resident memory of each worker's processes at the start and the end.
"""

from __future__ import annotations

import os
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # it ended meanwhile
    return raw[raw.rindex(")") + 2 :].split()


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def children(pid: int) -> list[int]:
    """The live direct children of ``pid`` (a Celery worker's pool processes)."""
    found = []
    for candidate in _pids():
        fields = _stat(candidate)
        if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
            found.append(candidate)
    return sorted(found)


def rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 when it is gone)."""
    fields = _stat(pid)
    return int(fields[21]) * _PAGE if fields is not None else 0


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and its live children, in bytes."""
    return rss(pid) + sum(rss(child) for child in children(pid))


def _socket_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def owner_of_port(port: int, among: list[int]) -> int | None:
    """Which of the processes ``among`` holds a TCP socket whose local port is ``port``."""
    inodes = {f"socket:[{i}]" for i in _socket_inodes(port)}
    if not inodes:
        return None
    for pid in among:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None
