"""Building pydantic models from values the service made itself, cheaper than
``model_construct``.

``Model.model_construct(**values)`` skips validation but still walks every field of the model
on every call (aliases, validation aliases, defaults): a quarter of what a notification costs
to build, three models each, and as much again for the candidacies of a fan-out. ``constructor``
does that walk once per model and returns a function that only fills ``__dict__``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

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
