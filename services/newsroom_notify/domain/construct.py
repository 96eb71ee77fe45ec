"""Building pydantic models from values the service made itself, cheaper than
``model_construct``.

``Model.model_construct(**values)`` skips validation but still walks every field of the model
on every call (aliases, validation aliases, defaults): a quarter of what a notification costs
to build, three models each, and as much again for the candidacies of a fan-out. ``constructor``
does that walk once per model and returns a function that only fills ``__dict__``.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, FutureDatetime, NaiveDatetime, PastDatetime

M = TypeVar("M", bound=BaseModel)

_IMMUTABLE = (type(None), str, int, float, bool, bytes, enum.Enum)
GIVEN, SHARED, FRESH = 0, 1, 2  # where a field's value comes from


def constructor(cls: type[M]) -> Callable[..., M]:
    """A function building a ``cls`` from field values (by field name) exactly as
    ``cls.model_construct`` does: no validation, the fields not given take their default (a
    mutable default or a default factory anew for each instance), ``model_fields_set`` is the
    fields given. Only for values the service built itself, and only field names: an unknown
    name is not ignored, as ``model_construct`` would, but kept. A model with aliases, a
    ``model_post_init``, extra fields allowed or a root gets ``model_construct`` itself."""
    fields = cls.__pydantic_fields__
    if (
        cls.__pydantic_post_init__
        or cls.__pydantic_root_model__
        or cls.model_config.get("extra") == "allow"
        or any(f.alias is not None or f.validation_alias is not None for f in fields.values())
    ):
        return cls.model_construct
    new = cls.__new__
    set_attribute = object.__setattr__
    # Per set of names given (a call site gives the same ones every time): the fields in the
    # model's order (pydantic serialises a constructed model in the order of its ``__dict__``),
    # each taken from the values, or its immutable default, or its default made anew.
    plans: dict[tuple[str, ...], tuple[tuple[str, int, Any], ...]] = {}

    def plan(given: tuple[str, ...]) -> tuple[tuple[str, int, Any], ...]:
        steps: list[tuple[str, int, Any]] = []
        for name, field in fields.items():
            if name in given:
                steps.append((name, GIVEN, None))
            elif field.is_required():
                continue  # model_construct leaves it out too
            elif field.default_factory is None and isinstance(field.default, _IMMUTABLE):
                steps.append((name, SHARED, field.default))
            else:
                steps.append((name, FRESH, field))
        steps += [(name, GIVEN, None) for name in given if name not in fields]
        plans[given] = tuple(steps)
        return plans[given]

    def build(**values: Any) -> M:
        given = tuple(values)
        steps = plans.get(given) or plan(given)
        state: dict[str, Any] = {}
        for name, how, default in steps:
            if how == GIVEN:
                state[name] = values[name]
            elif how == SHARED:
                state[name] = default
            else:
                state[name] = default.get_default(call_default_factory=True, validated_data=state)
        instance = new(cls)
        set_attribute(instance, "__dict__", state)
        set_attribute(instance, "__pydantic_fields_set__", set(values))
        set_attribute(instance, "__pydantic_extra__", None)
        set_attribute(instance, "__pydantic_private__", None)
        return instance

    return build


# --------------------------------------------------------------------------------- copies

_ATOMIC = (*_IMMUTABLE, datetime, date, time, timedelta)
# pydantic's constrained datetimes: not subclasses of ``datetime``, their values are datetimes.
_ATOMIC_MARKERS = (AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime)
ATOMIC, SHALLOW, DEEP = 0, 1, 2  # how a field's value is copied


def _copy_kind(annotation: Any) -> int:
    """How to copy a value of ``annotation``: kept as it is (immutable all the way down), a
    new container of the same immutable items, or walked (``_copied``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _copy_kind(get_args(annotation)[0])
    if origin is Literal:
        return ATOMIC
    if origin in (Union, UnionType):
        kinds = {_copy_kind(arg) for arg in get_args(annotation)}
        return ATOMIC if kinds == {ATOMIC} else DEEP
    if origin in (dict, list, set):
        return SHALLOW if all(_copy_kind(a) == ATOMIC for a in get_args(annotation)) else DEEP
    if origin is tuple or origin is frozenset:
        return ATOMIC if all(_copy_kind(a) == ATOMIC for a in get_args(annotation)) else DEEP
    if annotation is None or annotation in _ATOMIC_MARKERS:
        return ATOMIC
    if isinstance(annotation, type) and issubclass(annotation, _ATOMIC):
        return ATOMIC
    return DEEP


def _copied(value: Any) -> Any:
    """A copy of ``value`` sharing nothing mutable with it."""
    if isinstance(value, _ATOMIC):
        return value
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if isinstance(value, BaseModel):
        return copier(kind)(value)
    return copy.deepcopy(value)


_COPIERS: dict[type[Any], Callable[[Any], Any]] = {}


def copier(cls: type[M]) -> Callable[[M], M]:
    """A function copying a ``cls`` deeply: the copy equals the original, serialises to the
    same JSON, and shares nothing mutable with it (a change to either, however deep, leaves
    the other as it was). What ``model_copy(deep=True)`` gives, several times faster: the
    fields whose values are immutable are shared, a dict or list of immutable items is copied
    as a container, only the rest is walked. Only for values of their fields' types (a decoded
    value, or one the service built)."""
    made_before = _COPIERS.get(cls)
    if made_before is not None:
        return made_before
    shallow, deep = [], []
    for name, field in cls.__pydantic_fields__.items():
        kind = _copy_kind(field.annotation)
        if kind == SHALLOW:
            shallow.append(name)
        elif kind == DEEP:
            deep.append(name)
    new = cls.__new__
    set_attribute = object.__setattr__

    def copy_of(instance: M) -> M:
        state = instance.__dict__.copy()
        for name in shallow:
            value = state.get(name)
            if value is not None:
                state[name] = value.copy()
        for name in deep:
            if name in state:
                state[name] = _copied(state[name])
        made = new(type(instance))
        set_attribute(made, "__dict__", state)
        set_attribute(made, "__pydantic_fields_set__", set(instance.__pydantic_fields_set__))
        extra, private = instance.__pydantic_extra__, instance.__pydantic_private__
        set_attribute(made, "__pydantic_extra__", None if extra is None else _copied(extra))
        set_attribute(made, "__pydantic_private__", None if private is None else _copied(private))
        return made

    _COPIERS[cls] = copy_of
    return copy_of
