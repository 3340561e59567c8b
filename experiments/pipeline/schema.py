"""The building blocks of every Gymnos schema, and the one formatter of their errors.

Every document Gymnos accepts (a training config, a sweep) is a tree of pydantic models:

- ``Section``: a fixed set of keys (``training``, ``training.samples``);
- ``Component``: one member of a discriminated union on ``type`` (a callback, a tracker,
  a preprocessor), whose keys are its arguments;
- ``Explained(what)``: a field whose every failure reads ``must be <what>, got <value>``.

``validate(Model, data)`` returns the model or raises ``ConfigError`` listing every problem
as ``path: message``, unknown keys and types with a did-you-mean, for example::

    training.epoch: unknown key; did you mean 'epochs'? (expected one of: samples, batch_size, ...)
    training.callbacks[0].type: unknown callback type 'early_stoping'; did you mean 'early_stopping'?
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, WrapValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from . import jsonlimits
from .errors import ConfigError, Problem, did_you_mean, invalid, unknown_argument_message, unknown_type_message

ModelT = TypeVar("ModelT", bound=BaseModel)


class Section(BaseModel):
    """A part of a document with a fixed set of keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Component(Section):
    """One member of a discriminated union on ``type``: its other keys are its arguments."""

    # The keys that choose the member rather than configure it (listed in no "it accepts").
    selectors: ClassVar[tuple[str, ...]] = ("type",)

    @classmethod
    def label(cls) -> str:
        """How messages name it: the ``type`` it answers to (``early_stopping``)."""
        return "/".join(str(_literal(cls, key)) for key in cls.selectors)

    @classmethod
    def arguments(cls) -> list[str]:
        return [name for name in cls.model_fields if name not in cls.selectors]


class UnionKind:
    """Annotated metadata naming what a discriminated union chooses: ``UnionKind("callback type")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def _literal(model: type[BaseModel], key: str) -> object:
    args = get_args(model.model_fields[key].annotation)
    return args[0] if args else None


def shown(value: object) -> str:
    """A value as the person wrote it (JSON), cut to a readable length."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def Explained(what: str) -> WrapValidator:  # capitalised: reads as a type annotation
    """Any failure of the field reads ``must be <what>, got <value>`` (one problem, not one per union member)."""

    def check(value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise invalid(f"must be {what}, got {shown(value)}") from None

    return WrapValidator(check)


# --- walking a document's models along an error's location ---------------------------------


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``| None``; return the core annotation and the metadata seen."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata += extra
            continue
        if origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _field_annotation(field: FieldInfo) -> Any:
    if field.discriminator is not None:
        return Annotated[field.annotation, field]
    return field.annotation


def _union_members(annotation: Any, metadata: list[Any]) -> tuple[str, str, dict[str, Any]] | None:
    """``(discriminator, kind, {tag: member})`` for a discriminated union, else None."""
    discriminator = next(
        (m.discriminator for m in metadata if isinstance(m, FieldInfo) and isinstance(m.discriminator, str)), None
    )
    if discriminator is None:
        return None
    kind = next((m.kind for m in metadata if isinstance(m, UnionKind)), discriminator)
    members: dict[str, Any] = {}
    for member in get_args(annotation):
        core, _ = _unwrap(member)
        if isinstance(core, type) and issubclass(core, BaseModel) and discriminator in core.model_fields:
            for tag in get_args(core.model_fields[discriminator].annotation):
                members[str(tag)] = member
        else:  # a nested union: every member shares its outer tag
            for inner in get_args(core):
                inner_core, _ = _unwrap(inner)
                members[str(_literal(inner_core, discriminator))] = member
    return discriminator, kind, members


def _is_validator_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any]:
    """The JSON path of ``loc`` (union tags left out) and the annotation found there."""
    path = ""
    current: Any = root
    for part in loc:
        if _is_validator_tag(part):
            continue
        core, metadata = _unwrap(current)
        union = _union_members(core, metadata)
        if union is not None and isinstance(part, str) and part in union[2]:
            current = union[2][part]
            continue
        if isinstance(part, int):
            path += f"[{part}]"
            args = get_args(core)
            current = args[0] if get_origin(core) in (list, tuple) and args else None
            continue
        path += f".{part}" if path else str(part)
        if isinstance(core, type) and issubclass(core, BaseModel):
            field = core.model_fields.get(part)
            current = _field_annotation(field) if field is not None else None
        elif get_origin(core) is dict:
            current = get_args(core)[1] if get_args(core) else None
        else:
            current = None
    return path, current


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


# --- the one formatter ----------------------------------------------------------------------

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "literal_error": "",
}


# pydantic's bound errors: the context key holding the bound, and how a message says it.
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _message(error: Any, at: Any) -> str:
    """What is wrong, for one pydantic error (``at``: the annotation where it happened)."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "gymnos":
        return str(ctx["message"])
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, got {shown(given)}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {shown(given)}"
    if kind in _BOUNDS:
        return _bound_message(kind, ctx, given, at)
    if kind in _LENGTHS:
        return _length_message(kind, ctx, given)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{message[0].lower()}{message[1:]}, got {shown(given)}"


def _bound_message(kind: str, ctx: dict[str, Any], given: Any, at: Any) -> str:
    """A number out of its bounds: ``must be at least 1, got 0`` (above 0 reads as positive)."""
    if kind == "greater_than" and ctx.get("gt") == 0:
        core, _ = _unwrap(at)
        what = "a number above 0" if core is float else "a positive integer"
        return f"must be {what}, got {shown(given)}"
    key, words = _BOUNDS[kind]
    return f"must be {words} {_number(ctx.get(key))}, got {shown(given)}"


# pydantic's length errors, of a list or of a text.
_LENGTHS = {"too_short", "too_long", "string_too_short", "string_too_long"}


def _length_message(kind: str, ctx: dict[str, Any], given: Any) -> str:
    """A list or a text too short or too long."""
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {shown(given)}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s), got {len(given) if given is not None else '?'}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx['min_length']} characters"
    return f"must be at most {ctx.get('max_length')} characters long, got {shown(given)}"


def _union_problem(error: Any, root: type[BaseModel]) -> Problem:
    """A discriminated union whose tag is missing or names nothing: ``...type: unknown callback type 'x'``."""
    path, annotation = walk(root, error["loc"])
    core, metadata = _unwrap(annotation)
    union = _union_members(core, metadata)
    discriminator = str((error.get("ctx") or {}).get("discriminator", "'type'")).strip("'")
    kind, tags = (union[1], list(union[2])) if union else (discriminator, [])
    if error["type"] == "union_tag_not_found":
        given = error.get("input")
        if not isinstance(given, dict):
            return Problem(
                path,
                f'must be an object such as {{"{discriminator}": "{tags[0] if tags else "..."}"}}, got {shown(given)}',
            )
        return Problem(_join(path, discriminator), f"is required: name a {kind}, one of {', '.join(tags)}")
    tag = (error.get("ctx") or {}).get("tag")
    return Problem(_join(path, discriminator), unknown_type_message(kind, tag, tags))


def problems_from(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Every error of ``exc`` as ``Problem(path, message)``, in the order pydantic found them."""
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            problems.append(_union_problem(error, root))
            continue
        if error["type"] == "extra_forbidden":
            path, owner = walk(root, loc[:-1])
            problems.append(Problem(_join(path, str(loc[-1])), _unknown_key(str(loc[-1]), owner)))
            continue
        path, annotation = walk(root, loc)
        ctx = error.get("ctx") or {}
        if error["type"] == "gymnos":
            path = ctx["at"] if ctx.get("absolute") else _join(path, ctx.get("at", ""))
        problems.append(Problem(path, _message(error, annotation)))
    return problems


def _unknown_key(key: str, owner: Any) -> str:
    model, _ = _unwrap(owner)
    if isinstance(model, type) and issubclass(model, Component):
        return unknown_argument_message(model.label(), key, model.arguments())
    fields = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    listing = f" (expected one of: {', '.join(fields)})" if fields else ""
    return f"unknown key{did_you_mean(key, fields)}{listing}"


def validate(
    model: type[ModelT], data: object, source: str | None = None, context: dict[str, Any] | None = None
) -> ModelT:
    """``model.model_validate(data, context=context)``, every problem raised at once as a ``ConfigError``.

    ``data`` nested deeper than ``jsonlimits.MAX_DEPTH`` is one problem, found without recursing.
    """
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"must be a JSON object, got {_json_type(data)}")], source)
    try:
        jsonlimits.check_depth(data, what="the document")
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError([Problem("", str(exc))], source) from None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, model), source) from None


def _json_type(value: object) -> str:
    names = {list: "a list", str: "a string", bool: "true or false", type(None): "null", int: "a number"}
    return names.get(type(value), "a number" if isinstance(value, float) else type(value).__name__)


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema for OpenAPI: refs under ``#/components/schemas``, and a nested union's
    discriminator mapping (which OpenAPI wants as refs only) left to its ``oneOf``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            mapping = (
                (node.get("discriminator") or {}).get("mapping")
                if isinstance(node.get("discriminator"), dict)
                else None
            )
            if isinstance(mapping, dict) and not all(isinstance(value, str) for value in mapping.values()):
                node = {key: value for key, value in node.items() if key != "discriminator"}
            return {key: clean(value) for key, value in node.items()}
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    return typing.cast(dict[str, Any], clean(schema))


__all__ = [
    "Section",
    "Component",
    "UnionKind",
    "Explained",
    "Literal",
    "PydanticCustomError",
    "problems_from",
    "validate",
    "walk",
    "shown",
    "openapi_schema",
]
