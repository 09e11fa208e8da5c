"""Celery messages of every wrong shape, generated (hypothesis), run through the real tasks
of the giftq app as a worker would run them: each is refused with a typed error naming the
argument that is wrong, and nothing is written (a client in any language may send anything).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import orm
from sqlalchemy.orm import sessionmaker

from delivery.errors import InvalidOrder
from delivery.worker.celery_app import get_app
from tests.conftest import table_counts

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
DISPATCH = [
    "giftq.dispatch_email",
    "giftq.dispatch_sms",
    "giftq.dispatch_printable",
    "giftq.dispatch_physical",
]


def _is_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


def _is_id(value: Any) -> bool:
    return _is_ids([value])


def _run(task: str, args: list[Any], kwargs: dict[str, Any]) -> InvalidOrder:
    app = get_app()
    app.loader.import_default_modules()  # the worker's own step: register delivery.worker.tasks
    result = app.tasks[task].apply(args=args, kwargs=kwargs)
    assert result.failed(), (task, result.result)
    assert isinstance(result.result, InvalidOrder), repr(result.result)
    return result.result


def _named(refusal: InvalidOrder) -> set[str]:
    return {e.path.split(".")[0] for e in refusal.errors}


@pytest.fixture
def counts(Session: sessionmaker[orm.Session]) -> Any:
    return lambda: table_counts(Session)


@SETTINGS
@given(task=st.sampled_from(DISPATCH), ids=JSON.filter(lambda v: not _is_ids(v)))
def test_a_dispatch_without_a_list_of_ids_is_refused_naming_it(counts: Any, task: str, ids: Any) -> None:
    before = counts()
    assert _named(_run(task, [], {"delivery_ids": ids})) == {"delivery_ids"}
    assert counts() == before


@SETTINGS
@given(order_id=JSON.filter(lambda v: not _is_id(v)))
def test_an_order_to_process_without_an_id_is_refused_naming_it(counts: Any, order_id: Any) -> None:
    before = counts()
    assert _named(_run("giftq.process_order", [], {"order_id": order_id})) == {"order_id"}
    assert counts() == before


@SETTINGS
@given(
    task=st.sampled_from(["giftq.process_order", "giftq.place_order", *DISPATCH]),
    args=st.lists(JSON, min_size=1, max_size=3),
    extra=st.dictionaries(
        # "self": a bound task's own first parameter, and a name a client may well send.
        st.just("self")
        | st.text(min_size=1, max_size=10).filter(
            lambda k: k not in {"order", "idempotency_key", "order_id", "delivery_ids"}
        ),
        JSON,
        min_size=1,
        max_size=3,
    ),
)
def test_positional_arguments_and_unknown_kwargs_are_refused_by_name(
    counts: Any, task: str, args: list[Any], extra: dict[str, Any]
) -> None:
    before = counts()
    named = {e.path for e in _run(task, args, {**extra}).errors}  # a kwarg's name as sent, dots and all
    assert {"args", *extra} <= named
    assert counts() == before


@SETTINGS
@given(order=JSON, key=JSON.filter(lambda v: not isinstance(v, str)))
def test_an_order_message_of_the_wrong_shape_names_the_order_and_the_key(
    counts: Any, order: Any, key: Any
) -> None:
    before = counts()
    named = _named(_run("giftq.place_order", [], {"order": order, "idempotency_key": key}))
    assert named == {"order", "idempotency_key"}
    assert counts() == before
