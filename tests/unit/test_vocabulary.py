"""The domain's reasons are the contract's: a reason added on one side only would be written
into notifications the schema refuses, or never be decided."""

from __future__ import annotations

from typing import get_args

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.model import PRIORITY, Reason


def test_the_domain_reasons_are_exactly_the_contracts() -> None:
    assert sorted(r.value for r in Reason) == sorted(get_args(ev.Reason))


def test_every_reason_has_a_priority() -> None:
    assert set(PRIORITY) == set(Reason)
