"""Vendor report files of any content, generated (hypothesis): each is refused whole with
:class:`ReportRefused` naming its problems (never another exception), and nothing changes.

A row spoiled field by field is covered through the HTTP callback
(tests/api/test_bad_callbacks.py); both doors share the parser and :func:`reports.apply`.
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import orm
from sqlalchemy.orm import sessionmaker

from delivery.channels.physical import reports
from delivery.channels.physical.errors import ReportRefused
from tests.conftest import table_counts

CELL = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


FILES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    # The right columns, cells of anything: no row can name a card of ours.
    st.lists(st.lists(CELL, min_size=6, max_size=6), max_size=4).map(
        lambda rows: _csv(list(reports.COLUMNS), rows)
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=FILES)
def test_a_report_file_of_anything_else_is_refused_whole(
    Session: sessionmaker[orm.Session], data: bytes
) -> None:
    before = table_counts(Session)
    with pytest.raises(ReportRefused) as refused, Session.begin() as session:
        reports.apply_csv(session, data, source="test")
    assert refused.value.problems
    assert all(p.reason for p in refused.value.problems)
    assert table_counts(Session) == before
