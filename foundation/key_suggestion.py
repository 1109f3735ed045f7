""" "Did you mean ...?" for a misspelled configuration key, from the pydantic models' fields."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def known_keys(model: type[BaseModel], parents: Sequence[str | int]) -> list[str]:
    """The keys allowed at the section ``parents`` of ``model`` ([] if it is not a section)."""
    current: list[type[BaseModel]] = [model]
    for part in parents:
        if isinstance(part, int):
            continue  # a list item: the same models as the list's
        found: list[type[BaseModel]] = []
        for candidate in current:
            field = candidate.model_fields.get(part)
            if field is not None:
                found.extend(_models_in(field.annotation))
        current = found
    keys: list[str] = []
    for candidate in current:
        keys.extend(name for name in candidate.model_fields if name not in keys)
    return keys


def did_you_mean(key: str, model: type[BaseModel], parents: Sequence[str | int]) -> str:
    """`` (did you mean 'x'?)`` when a known key is close to ``key``, else ``""``."""
    close = difflib.get_close_matches(key, known_keys(model, parents), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is None:
        return []
    if origin in (Union, types.UnionType) or get_args(annotation):
        models: list[type[BaseModel]] = []
        for argument in get_args(annotation):
            models.extend(_models_in(argument))
        return models
    return []
