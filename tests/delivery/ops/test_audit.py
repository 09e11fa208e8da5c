from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from delivery.ops import audit
from delivery.ops.models import Outcome

DONE = Outcome.DONE


def test_the_audit_log_refuses_a_code_among_the_arguments(Session: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="never written"), Session.begin() as s:
        audit.record(
            s, actor="a", action="ops card", arguments={"code": "x"}, outcome=Outcome.DONE, detail=""
        )
    with Session.begin() as s:
        audit.record(
            s, actor="a" * 300, action="ops sweep", arguments={}, outcome=Outcome.DONE, detail="x\ny"
        )
    with Session() as s:
        (entry,) = audit.recent(s)
    assert (len(entry.actor), entry.detail) == (100, "x y")
