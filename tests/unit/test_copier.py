"""``copier``: the deep copy a table hands out for each read of a value it decoded once in a
batch. A copy must be what a fresh decode would have given (equal, the same JSON, the same
fields set) and share nothing mutable with the value kept: the domain changes what it reads and
writes it back, or not."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ValidationError

from newsroom_notify.domain import state
from newsroom_notify.domain.construct import copier

# Every model a table stores (stream/stages.py: ``table(...)``).
TABLE_MODELS = [
    state.CommentInfo,
    state.Thread,
    state.Unfollowed,
    state.Authored,
    state.ActivitySlot,
    state.DigestMember,
    state.Pending,
    state.Followers,
    state.FollowerHead,
    state.Fanout,
    state.Profile,
    state.Quota,
    state.Sent,
    state.Traces,
    state.Held,
    state.DigestBuffer,
]


def values_of(annotation: Any) -> st.SearchStrategy[Any]:
    """JSON-able values of a field's annotation (models as dicts of their fields)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        return st.one_of(*(values_of(a) for a in args))
    if origin is Literal:
        return st.sampled_from(args)
    if origin is dict:
        return st.dictionaries(values_of(args[0]), values_of(args[1]), max_size=3)
    if origin in (list, set, tuple):
        return st.lists(values_of(args[0]), max_size=3)
    if annotation is type(None) or annotation is None:
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return st.fixed_dictionaries(
            {},
            optional={n: values_of(f.annotation) for n, f in annotation.model_fields.items()},
        )
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from([member.value for member in annotation])
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-5, 5)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if annotation in (datetime, AwareDatetime):
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    if annotation is str:
        return st.text(max_size=4)
    raise AssertionError(f"no strategy for {annotation!r}")  # a new field type: add it


def decoded(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Values of ``model`` as a table reads them: decoded from JSON."""

    def decode(fields: dict[str, Any]) -> BaseModel:
        try:
            return model.model_validate(fields)
        except ValidationError:
            assume(False)
            raise

    return values_of(model).map(decode)


def change_everything(value: Any) -> None:
    """Change every mutable thing reachable from ``value`` in place."""
    if isinstance(value, BaseModel):
        for item in list(value.__dict__.values()):
            change_everything(item)
        value.__dict__["changed"] = True
        value.__pydantic_fields_set__.add("changed")
    elif isinstance(value, dict):
        for item in list(value.values()):
            change_everything(item)
        value["changed"] = True
    elif isinstance(value, list):
        for item in value:
            change_everything(item)
        value.append("changed")


@pytest.mark.parametrize("model", TABLE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_copy_is_the_value_and_shares_nothing_mutable_with_it(
    model: type[BaseModel], data: st.DataObject
) -> None:
    original = data.draw(decoded(model))
    json, fields_set = original.model_dump_json(), set(original.model_fields_set)
    copy = copier(model)(original)
    assert type(copy) is model
    assert copy == original
    assert copy.model_dump_json() == json
    assert copy.model_fields_set == fields_set
    change_everything(copy)
    assert original.model_dump_json() == json  # the kept value as it was
    assert original.model_fields_set == fields_set
    again = copier(model)(original)
    assert again.model_dump_json() == json


def test_a_mutable_value_of_an_unknown_type_is_deep_copied() -> None:
    class Box(BaseModel):
        anything: Any = None
        items: list[Any] = []

    box = Box(anything={"a": [1, {"b": set()}]}, items=[bytearray(b"x")])
    copy = copier(Box)(box)
    copy.anything["a"][1]["b"].add(1)
    copy.items[0].extend(b"y")
    assert box == Box(anything={"a": [1, {"b": set()}]}, items=[bytearray(b"x")])
