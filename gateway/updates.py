"""``model_update``: the one way a service changes some fields of a row (after HackSoft's styleguide).

It sets only the fields the caller names and the data holds, validates the whole row with the
model's ``full_clean`` (so a rule is checked where the model states it, for the API, the CLI and the
admin alike) and saves only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def model_update(*, instance: M, fields: Iterable[str], data: Mapping[str, Any]) -> tuple[M, bool]:
    """Set ``instance``'s ``fields`` that ``data`` holds, validate and save; return it and whether it
    changed. Raises ValidationError (from ``full_clean``) naming the field."""
    changed = False
    for name in fields:
        if name in data and getattr(instance, name) != data[name]:
            setattr(instance, name, data[name])
            changed = True
    if changed:
        instance.full_clean()
        instance.save()
    return instance, changed
