"""``constructor``: the same models as ``model_construct`` builds, for the models the hot path
builds with it, and no default object shared between two instances."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.construct import constructor
from newsroom_notify.domain.messages import Candidacy
from newsroom_notify.domain.model import ArticleInfo, Basis, Condition, Reason, Subject

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
SUBJECT = Subject(key="a:a-1", article=ArticleInfo(id="a-1", title="T", url="u", journalist_id="j"))
BASIS = Basis(
    reason=Reason.NEW_ARTICLE, condition=Condition.SUBSCRIBED, scope="section", target="s"
)


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (ev.Recipient, {"id": "m-1", "name": "Ana", "email": "ana@example.org"}),
        (ev.Recipient, {"id": "g-1", "name": "Guest", "email": None}),
        (
            ev.NotificationCreated,
            {"id": "n-1", "source": "s", "time": NOW, "subject": "c:1", "data": None},
        ),  # specversion, type, datacontenttype: their defaults
        (
            ev.NotificationCreatedData,
            {
                "notification_id": "n-1",
                "recipient": ev.Recipient(id="m-1", name="Ana", email=None),
                "reason": "reply",
                "article": ev.ArticleRef(id="a-1", title="T", url="u"),
                "comment": None,
                "parent": None,
                "unsubscribe_token": "t",
                "manage_token": "m",
            },  # confirm_token: its default
        ),
        (Candidacy, {"recipient_id": "m-1", "subject": SUBJECT, "bases": [BASIS], "at": NOW}),
    ],
)
def test_it_builds_what_model_construct_builds(model: type[BaseModel], values: dict) -> None:  # type: ignore[type-arg]
    built, reference = constructor(model)(**values), model.model_construct(**values)
    assert type(built) is model
    assert built == reference
    assert built.model_fields_set == reference.model_fields_set
    assert built.model_dump_json() == reference.model_dump_json()
    assert built.__dict__ == reference.__dict__


class WithMutableDefaults(BaseModel):
    name: str
    tags: list[str] = []
    seen: dict[str, int] = Field(default_factory=dict)


def test_mutable_defaults_are_made_anew_for_each_instance() -> None:
    build = constructor(WithMutableDefaults)
    one, two = build(name="a"), build(name="b")
    one.tags.append("x")
    one.seen["k"] = 1
    assert (two.tags, two.seen) == ([], {})
    assert WithMutableDefaults(name="c").tags == []


class Aliased(BaseModel):
    value: int = Field(alias="v")


def test_a_model_with_aliases_gets_model_construct_itself() -> None:
    assert constructor(Aliased) == Aliased.model_construct
    assert constructor(Aliased)(v=3).value == 3
