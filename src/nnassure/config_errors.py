"""One-line :class:`~nnassure.errors.ConfigError` messages for every way a config can be wrong.

Hydra reports unknown group options and overrides of keys that do not exist, pydantic reports
unknown keys, wrong types and values outside what a key allows; both are multi-line and name the
key in their own ways. The stage entry points and the Snakefile show one line to the user, so
everything is translated here into ``invalid config value <key>=<value>: expected <allowed>``,
``unknown config key <key>: expected one of ...`` or ``invalid configuration: <hydra's reason>``.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from nnassure.errors import ConfigError

# The error type the schema's own value checks raise (see :func:`invalid`).
INVALID_VALUE = "invalid_value"

# pydantic's type errors, as the "expected ..." half of the message.
_EXPECTED_TYPE = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


def invalid_value_message(key: str, value: Any, allowed: str) -> str:
    return f"invalid config value {key}={value!r}: expected {allowed}"


def fail(key: str, value: Any, allowed: str) -> NoReturn:
    """Raise the :class:`ConfigError` of ``key=value`` where ``allowed`` says what would do."""
    raise ConfigError(invalid_value_message(key, value, allowed))


def invalid(allowed: str, value: Any) -> PydanticCustomError:
    """The error a schema validator raises: ``allowed`` is what the key accepts, ``value`` the
    value as the schema read it (pydantic's own record of the input is the raw one, e.g. 0 for a
    float key given as 0)."""
    return PydanticCustomError(INVALID_VALUE, "{allowed}", {"allowed": allowed, "value": value})


def key_of(loc: tuple[str | int, ...]) -> str:
    """``("certify", "eps", 1)`` -> ``certify.eps[1]``."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _entry_model(annotation: Any) -> Any:
    """The value type of a ``dict[str, X]`` annotation (optional or not), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is dict:
            return typing.get_args(candidate)[1]
    return None


def _model_at(schema: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The schema type of the node at ``loc``, stepping through named entries of ``dict[str, Section]``
    fields (``kri.scenarios.<name>``); None where ``loc`` leaves the schema."""
    model: Any = schema
    for part in loc:
        fields = getattr(model, "model_fields", None)
        entry = _entry_model(model)
        if entry is not None and isinstance(part, str):
            model = entry
        elif fields is not None and isinstance(part, str) and part in fields:
            model = fields[part].annotation
            if typing.get_origin(model) in (typing.Union, types.UnionType):
                model = next((a for a in typing.get_args(model) if a is not type(None)), model)
        else:
            return None
    return model


def _fields_at(schema: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (empty if that is not a section)."""
    fields = getattr(_model_at(schema, loc), "model_fields", None)
    return list(fields) if fields else []


def from_validation(exc: ValidationError, schema: type[BaseModel]) -> ConfigError:
    """The first error of a failed schema validation as one line (the first is what the user
    fixes first; the next run reports the next one)."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    context = error.get("ctx") or {}
    kind = error["type"]
    if kind == INVALID_VALUE:
        return ConfigError(invalid_value_message(key_of(loc), context.get("value", error["input"]),
                                                 context["allowed"]))
    key = key_of(loc)
    if kind == "extra_forbidden":
        allowed = _fields_at(schema, loc[:-1])
        return ConfigError(f"unknown config key {key}: expected one of {', '.join(allowed)}")
    if kind == "missing":
        return ConfigError(f"missing config key {key}")
    expected = _EXPECTED_TYPE.get(kind, str(error["msg"]).lower())
    return ConfigError(invalid_value_message(key, error["input"], expected))


def unknown_key(key: str, schema: type[BaseModel]) -> ConfigError:
    """The error of a key the schema does not have, naming its first unknown part."""
    parts = key.split(".")
    for depth in range(len(parts)):
        if _entry_model(_model_at(schema, tuple(parts[:depth]))) is not None:
            if _model_at(schema, tuple(parts)) is not None:
                # e.g. a key of a scenario entry that its YAML leaves at the schema default
                return ConfigError(f"config key {key} is not set in conf/: add it with +{key}=<value>")
            continue
        allowed = _fields_at(schema, tuple(parts[:depth]))
        if not allowed:
            return ConfigError(f"unknown config key {key}: {'.'.join(parts[:depth])} is a value, not a section")
        if parts[depth] not in allowed:
            unknown = ".".join(parts[:depth + 1])
            return ConfigError(f"unknown config key {unknown}: expected one of {', '.join(allowed)}")
    return ConfigError(f"unknown config key {key}")


def from_hydra(exc: BaseException, schema: type[BaseModel] | None = None) -> ConfigError:
    """A Hydra or OmegaConf composition error (unknown group option, override of a key that does
    not exist, bad override syntax) as one line."""
    unknown = re.match(r"Could not override '([^']+)'\.\s+To append", str(exc))
    if unknown is not None and schema is not None:
        return unknown_key(unknown[1], schema)
    message = str(exc)
    if exc.__cause__ is not None:
        message += f": {exc.__cause__}"
    message = " ".join(message.split())
    # The search path and OmegaConf's node details repeat what the first sentence says.
    for tail in (" Config search path:", " full_key:"):
        message = message.split(tail)[0]
    return ConfigError(f"invalid configuration: {message}")


def from_override(line: str, exc: ValueError) -> ConfigError:
    """A bare ValueError Hydra lets through while applying an override (e.g. ``int("x")`` for the
    list index of ``certify.eps.x=0.5``), naming the override."""
    return ConfigError(f"invalid override {line}: {exc}")


def from_interpolation(exc: BaseException) -> ConfigError:
    """An interpolation that does not resolve (``${nope}``; ``${hydra:...}`` outside a Hydra app),
    naming the key that holds it (OmegaConf's ``full_key``) and the first line of its reason."""
    reason = str(exc).splitlines()[0]
    return ConfigError(f"invalid config value {getattr(exc, 'full_key', '')}: {reason}")
