from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Column, MetaData, Table, select, text
from sqlalchemy.orm import sessionmaker

from giftq.db import UTCDateTime, make_engine


def test_sqlite_is_set_up_for_concurrent_writers(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_sqlite_write_transactions_do_not_lose_updates(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: read-modify-write from many threads, no lost update, no 'locked' error."""
    engine = make_engine(sqlite_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        c.execute(text("INSERT INTO counter VALUES (0)"))
    Session = sessionmaker(engine)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with Session.begin() as s:
                    n = s.execute(text("SELECT n FROM counter")).scalar_one()
                    s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as c:
        assert c.execute(text("SELECT n FROM counter")).scalar_one() == 200
    engine.dispose()


def test_utc_datetime_refuses_naive_values() -> None:
    column_type = UTCDateTime()
    with pytest.raises(ValueError, match="naive datetime"):
        column_type.process_bind_param(dt.datetime(2026, 1, 1), None)


def test_utc_datetime_round_trips_as_aware_utc(database_url: str) -> None:
    engine = make_engine(database_url)
    instant = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    table = Table("t_instant", MetaData(), Column("at", UTCDateTime()))
    table.create(engine)
    with engine.begin() as c:
        c.execute(table.insert().values(at=instant))
        stored = c.execute(select(table.c.at)).scalar_one()
    assert stored == instant
    assert stored.tzinfo == dt.UTC
    engine.dispose()
