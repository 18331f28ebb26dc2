"""Schema registry: a name or file -> pydantic model, plus what engines and the store derive from it.

Built-ins live in ``schemas/`` (installed as ``docpipe.builtin_schemas``). Users bring their own as
``my_schemas.py:Model`` or a JSON Schema file. From one class come the JSON Schema an engine is given (constrained
decoding, server ``response_format``), the schema version stored with each extraction, and the typed columns of the
DuckDB views.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import importlib.util
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import GenerateJsonSchema

from .errors import SchemaError

BUILTIN = ("invoice", "receipt", "document")


@dataclass(frozen=True)
class Column:
    """One typed column of a view: name, DuckDB type, and the JSON path it is read from."""

    name: str
    sql_type: str
    description: str = ""


@dataclass(frozen=True)
class NestedList:
    """A list-of-objects field, which gets its own view ``<schema>_<field>``."""

    field: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class SchemaInfo:
    """A resolved schema: the model and everything derived from it."""

    name: str
    model: type[BaseModel]
    ref: str  # how to load it again (in a worker process): builtin name, "/abs/file.py:Model" or "/abs/file.json"
    version: str = ""
    columns: tuple[Column, ...] = ()
    nested: tuple[NestedList, ...] = field(default_factory=tuple)

    @cached_property
    def json_schema_text(self) -> str:
        """The engine JSON Schema as compact JSON, built once: pydantic takes ~5 ms to build it, and the Gemma
        engine's prompt of every page group carries it (on the thread that also feeds the GPU)."""
        return json.dumps(engine_json_schema(self.model), separators=(",", ":"))

    @property
    def json_schema(self) -> dict[str, Any]:
        """JSON Schema for engines: decimals as plain numbers, no $defs indirection problems (a fresh copy)."""
        return json.loads(self.json_schema_text)

    @property
    def field_descriptions(self) -> dict[str, str]:
        return {n: (f.description or "") for n, f in self.model.model_fields.items()}


class _NumberDecimals(GenerateJsonSchema):
    """Decimals as JSON numbers: what a model should emit (pydantic's default also allows strings)."""

    def decimal_schema(self, schema: Any) -> dict[str, Any]:  # noqa: D102
        return {"type": "number"}


def engine_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as an engine should see it (decimals as numbers, docpipe's x- hints removed)."""
    return _drop_x_keys(model.model_json_schema(schema_generator=_NumberDecimals))


def _drop_x_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_x_keys(v) for k, v in node.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(node, list):
        return [_drop_x_keys(v) for v in node]
    return node


# -- resolving ----------------------------------------------------------------------------------------------------
def resolve(spec: str) -> SchemaInfo:
    """A built-in name, ``path.py:Model``, ``package.module:Model`` or ``schema.json`` -> SchemaInfo."""
    return _resolve_cached(_normalise_ref(spec))


def _normalise_ref(spec: str) -> str:
    spec = spec.strip()
    if spec in BUILTIN:
        return spec
    path_part, _, attr = spec.partition(":")
    p = Path(path_part).expanduser()
    if p.suffix in (".py", ".json") and p.exists():
        return str(p.resolve()) + (f":{attr}" if attr else "")
    return spec


@lru_cache(maxsize=64)
def _resolve_cached(ref: str) -> SchemaInfo:
    model, name = _load_model(ref)
    return describe(model, name=name, ref=ref)


def _load_model(ref: str) -> tuple[type[BaseModel], str]:
    if ref in BUILTIN:
        mod = importlib.import_module(f"docpipe.builtin_schemas.{ref}")
        return mod.SCHEMA, ref
    path_part, _, attr = ref.partition(":")
    p = Path(path_part)
    if p.suffix == ".json":
        if not p.exists():
            raise SchemaError(f"schema file not found: {p}")
        return _model_from_json_schema(p)
    if p.suffix == ".py":
        if not p.exists():
            raise SchemaError(f"schema file not found: {p}")
        mod = _import_file(p)
    else:
        if not attr:
            raise SchemaError(f"unknown schema {ref!r}: use one of {', '.join(BUILTIN)}, a file.py:Model or a .json "
                              "file")
        try:
            mod = importlib.import_module(path_part)
        except ImportError as e:
            raise SchemaError(f"cannot import schema module {path_part!r}: {e}") from e
    if attr:
        model = getattr(mod, attr, None)
        if model is None:
            raise SchemaError(f"{path_part} has no {attr!r}")
    else:
        model = getattr(mod, "SCHEMA", None)
        if model is None:
            found = [n for n, v in vars(mod).items() if isinstance(v, type) and issubclass(v, BaseModel)
                     and v is not BaseModel and v.__module__ == mod.__name__]
            if len(found) != 1:
                raise SchemaError(_which_model(path_part, [getattr(mod, n) for n in found]))
            model = getattr(mod, found[0])
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise SchemaError(f"{ref} is not a pydantic model")
    return model, schema_name(model)


def _which_model(path: str, models: list[type[BaseModel]]) -> str:
    """The error for a file with no or several models: list them, suggest one no other model contains."""
    if not models:
        return f"{path} defines no pydantic model: add one (class Contract(BaseModel): ...)"
    inner = {_list_item(f.annotation) or _strip_optional(f.annotation)
             for m in models for f in m.model_fields.values()}
    top = [m for m in models if m not in inner] or models
    return (f"{path} defines {len(models)} models ({', '.join(m.__name__ for m in models)}): name one, "
            f"e.g. --schema {path}:{top[0].__name__}")


def _import_file(p: Path) -> types.ModuleType:
    mod_name = "docpipe_user_schema_" + hashlib.sha1(str(p).encode()).hexdigest()[:10]
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise SchemaError(f"cannot load schema file {p}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        del sys.modules[mod_name]
        raise SchemaError(f"{p}: {type(e).__name__}: {e}") from e
    return mod


def schema_name(model: type[BaseModel]) -> str:
    """SQL-safe name for a model: its title if set, else its class name, in snake_case."""
    title = model.model_config.get("title") or model.__name__
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", title).lower()
    s = re.sub(r"[^a-z0-9_]+", "_", s).strip("_")
    return s or "schema"


# -- JSON Schema files -> pydantic ----------------------------------------------------------------------------------
_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": Decimal, "boolean": bool}


def _model_from_json_schema(p: Path) -> tuple[type[BaseModel], str]:
    try:
        schema = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SchemaError(f"{p}: not a readable JSON Schema: {e}") from e
    if not isinstance(schema, dict) or schema.get("type") != "object" or "properties" not in schema:
        raise SchemaError(f"{p}: the JSON Schema's root must be an object with properties")
    title = schema.get("title") or p.stem
    model = _object_model(title, schema, schema.get("$defs", schema.get("definitions", {})))
    return model, schema_name(model)


def _object_model(title: str, schema: dict[str, Any], defs: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        typ = _json_type(name, prop, defs)
        if name in required:  # as in a pydantic model: must be present; null only where the type allows it
            nullable = "null" in (prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")])
            fields[name] = (typ | None if nullable else typ, Field(..., description=prop.get("description")))
        else:
            fields[name] = (typ | None, Field(None, description=prop.get("description")))
    model = create_model(re.sub(r"\W", "_", title) or "Model", **fields)  # type: ignore[call-overload]
    model.model_config["title"] = title
    return model


def _json_type(name: str, prop: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in prop:
        prop = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "string" and prop.get("format") == "date":
        return dt.date
    if t == "array":
        item = prop.get("items", {})
        return list[_json_type(name + "_item", item, defs)]  # type: ignore[misc]
    if t == "object":
        return _object_model(prop.get("title") or name, prop, defs)
    return _JSON_TYPES.get(t or "string", str)


# -- columns for the store ------------------------------------------------------------------------------------------
def describe(model: type[BaseModel], name: str | None = None, ref: str | None = None) -> SchemaInfo:
    """SchemaInfo for a model: version hash, top-level columns and nested list views."""
    js = json.dumps(model.model_json_schema(), sort_keys=True)
    version = hashlib.sha256(js.encode()).hexdigest()[:12]
    columns: list[Column] = []
    nested: list[NestedList] = []
    for fname, f in model.model_fields.items():
        ann = f.annotation
        inner = _list_item(ann)
        if inner is not None and _is_model(inner):
            nested.append(NestedList(fname, tuple(_columns_of(inner))))
            continue
        columns.append(Column(fname, _sql_type(ann, f.json_schema_extra), f.description or ""))
    nm = name or schema_name(model)
    return SchemaInfo(name=nm, model=model, ref=ref or nm, version=version, columns=tuple(columns),
                      nested=tuple(nested))


def _columns_of(model: type[BaseModel]) -> list[Column]:
    return [Column(n, _sql_type(f.annotation, f.json_schema_extra), f.description or "")
            for n, f in model.model_fields.items()]


def _strip_optional(ann: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _list_item(ann: Any) -> Any | None:
    ann = _strip_optional(ann)
    if typing.get_origin(ann) in (list, tuple, set):
        args = typing.get_args(ann)
        return _strip_optional(args[0]) if args else Any
    return None


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _sql_type(ann: Any, extra: Any) -> str:
    if isinstance(extra, dict) and isinstance(extra.get("x-sql-type"), str):
        return extra["x-sql-type"]
    ann = _strip_optional(ann)
    if ann is bool:
        return "BOOLEAN"
    if ann is int:
        return "BIGINT"
    if ann is float:
        return "DOUBLE"
    if ann is Decimal:
        return "DECIMAL(18,4)"
    if ann is dt.date:
        return "DATE"
    if ann is dt.datetime:
        return "TIMESTAMP"
    if ann is str:
        return "VARCHAR"
    item = _list_item(ann)
    if item is not None and not _is_model(item):
        return _sql_type(item, None) + "[]"
    return "JSON"


def list_builtin() -> list[SchemaInfo]:
    """The built-in schemas, for ``docpipe schemas``."""
    return [resolve(n) for n in BUILTIN]
