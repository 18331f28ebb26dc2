"""Settings: everything docpipe can be told, typed, from four places; the first one set wins.

1. a flag (``--model``, ``--set batch_size=32``) or a keyword of ``docpipe.ingest``;
2. a ``DOCPIPE_*`` environment variable (``DOCPIPE_MODEL``, ``DOCPIPE_BASE_URL``, ``DOCPIPE_GEMMA='{"batch_size":
   32}'``, ``DOCPIPE_OPENAI__CONCURRENCY=16``);
3. ``docpipe.toml`` in the working directory, or the file ``DOCPIPE_CONFIG`` names (top-level keys, plus
   ``[gemma]``, ``[openai]`` and ``[engines.KIND]`` tables for the other engines, plugins included);
4. the default here.

``Settings.load(flags)`` is called once at the edge (the CLI, ``docpipe.ingest``) and passed down; nothing reads a
module-level settings object. ``docpipe config`` prints each setting with where its value came from.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .engines.gemma.settings import GemmaSettings
from .engines.openai.config import OpenAISettings
from .errors import ConfigError

if TYPE_CHECKING:
    from .engines.base import EngineOptions

CONFIG_FILE = "docpipe.toml"
IMAGE_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)
#: typed settings of the built-in engines that have any, by kind
ENGINE_SETTINGS: dict[str, type[Any]] = {"gemma": GemmaSettings, "openai": OpenAISettings}


with warnings.catch_warnings():  # a field named ``schema`` shadows pydantic's deprecated BaseModel.schema()
    warnings.filterwarnings("ignore", message='Field name "schema"')

    class Settings(BaseSettings):
        """docpipe's settings for one process: database, engine, schema, and each engine's typed settings.

        Usage::

            >>> from docpipe import Settings
            >>> s = Settings.load({"engine": "openai", "concurrency": 16})
            >>> s.openai.concurrency, s.origin("openai.concurrency")
            (16, 'flag')
            >>> docpipe.ingest("inbox/", settings=s)
        """

        model_config = SettingsConfigDict(env_prefix="DOCPIPE_", env_nested_delimiter="__", extra="forbid")

        db: Path = Field(Path("docpipe.duckdb"), description="DuckDB file results are written to and read from.")
        engine: str = Field("auto", description="Engine kind: auto, a built-in (offline, gemma, openai) or a "
                            "plugin's; see docpipe engines.")
        schema: str = Field("invoice", description="Schema: a built-in name, my_schemas.py:Model or a JSON Schema "
                            "file.")  # type: ignore[assignment]
        workers: int = Field(min(2, os.cpu_count() or 1), ge=1, description="Processes for rasterizing and OCR.")
        model: str | None = Field(None, description="Model id or folder (gemma) or served model name (openai).")
        image_tokens: int = Field(1120, description="Image token budget per page: 70, 140, 280, 560 or 1120.")
        thinking: bool = Field(False, description="Let the model think before answering; thoughts are stored "
                               "apart.")
        max_pages: int = Field(2000, ge=1, description="Refuse documents longer than this many pages.")
        gpus: str | None = Field(None, description="One engine process per GPU: N (the first N), all, indices "
                                 "like 0,2, or cpu:N (N processes without a GPU); none: one engine here.")
        gemma: GemmaSettings = Field(default_factory=GemmaSettings, description="The gemma engine's settings.")
        openai: OpenAISettings = Field(default_factory=OpenAISettings, description="The openai engine's settings.")
        engines: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Settings of engines without "
                                                   "a typed model here (plugins, vllm), by kind.")

        _origins: dict[str, str] = PrivateAttr(default_factory=dict)

        @field_validator("engine")
        @classmethod
        def _known_engine(cls, kind: str) -> str:
            from .engines.base import registry

            kinds = registry()
            if kind != "auto" and kind not in kinds:
                raise ValueError(f"unknown engine {kind!r}; known: {', '.join(sorted(kinds))}, auto")
            return kind

        @field_validator("gpus", mode="before")
        @classmethod
        def _gpus_text(cls, value: Any) -> Any:
            return str(value) if isinstance(value, int) else value  # --set gpus=2 reads 2 as JSON

        @field_validator("image_tokens")
        @classmethod
        def _budget(cls, tokens: int) -> int:
            if tokens not in IMAGE_TOKEN_BUDGETS:
                raise ValueError(f"must be one of {', '.join(map(str, IMAGE_TOKEN_BUDGETS))}")
            return tokens

        @property
        def schema_name(self) -> str:
            """The ``schema`` setting (named so where ``schema`` would read as pydantic's)."""
            return self.schema

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _FlatOpenAIEnv(settings_cls), _TomlFile(settings_cls)

        @classmethod
        def load(cls, flags: Mapping[str, Any] | None = None) -> Settings:
            """Settings from flags (by name, flat: ``{"model": ..., "batch_size": 32}``), the environment,
            ``docpipe.toml`` and the defaults. Raises ConfigError naming the setting, its source and the problem;
            KeyError for a flag no setting has."""
            routed = route(flags or {})
            sources = {"flag": routed, **_source_values(cls)}
            try:
                settings = cls(**routed)
            except ValidationError as e:
                raise ConfigError(_one_line(e, sources)) from None
            except SettingsError as e:
                raise ConfigError(f"settings: {e}") from None
            settings._origins = _origins(settings, sources)
            return settings

        def merged(self, flags: Mapping[str, Any]) -> Settings:
            """A copy with flags applied on top (for ``docpipe.ingest(settings=..., model=...)``)."""
            routed = route(flags, engine=str(flags.get("engine", self.engine)))
            values = _deep_merge(self.model_dump(), routed)
            try:
                settings = type(self)(**values)
            except ValidationError as e:
                raise ConfigError(_one_line(e, {"flag": routed})) from None
            settings._origins = {**self._origins, **{p: "flag" for p in _leaves(routed)}}
            return settings

        def origin(self, name: str) -> str:
            """Where a setting's value came from: ``flag``, ``env``, ``toml`` or ``default`` (``gemma.batch_size``
            for an engine's)."""
            return self._origins.get(name, "default")

        def explain(self) -> list[SettingRow]:
            """Every setting, its value, where it came from and what it does (``docpipe config``)."""
            rows = []
            for name, info in type(self).model_fields.items():
                value = getattr(self, name)
                if name in ENGINE_SETTINGS:
                    for sub, sub_info in type(value).model_fields.items():
                        path = f"{name}.{sub}"
                        rows.append(SettingRow(path, getattr(value, sub), self.origin(path),
                                               sub_info.description or ""))
                elif name == "engines":
                    for kind, vals in value.items():
                        rows += [SettingRow(f"engines.{kind}.{k}", v, self.origin(f"engines.{kind}.{k}"), "")
                                 for k, v in vals.items()]
                else:
                    rows.append(SettingRow(name, value, self.origin(name), info.description or ""))
            return rows

        def engine_options(self) -> EngineOptions:
            """What engines are built with: the shared options and every engine's typed settings."""
            from .engines.base import EngineOptions

            return EngineOptions(workers=self.workers, model=self.model, image_tokens=self.image_tokens,
                                 thinking=self.thinking,
                                 settings={**self.engines, "gemma": self.gemma, "openai": self.openai})


@dataclass(frozen=True)
class SettingRow:
    """One line of ``docpipe config``."""

    name: str
    value: Any
    origin: str
    description: str


def route(flags: Mapping[str, Any], engine: str | None = None) -> dict[str, Any]:
    """Flat flags -> the nested shape of Settings: ``batch_size`` goes to ``gemma``, ``concurrency`` to ``openai``
    (a name both engines have goes to both); with an engine that has no typed model here (a plugin, vllm), every
    engine flag also goes to ``engines.KIND``, which that engine reads. None means "not given". Raises KeyError
    for a name nothing has."""
    engine = engine or str(flags.get("engine") or "auto")
    untyped = engine not in ("auto", "offline", *ENGINE_SETTINGS)
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        if key in Settings.model_fields:
            out[key] = _deep_merge(out.get(key, {}), value) if isinstance(value, Mapping) else value
            continue
        homes = [kind for kind, model in ENGINE_SETTINGS.items() if key in model.model_fields]
        if untyped:
            out.setdefault("engines", {}).setdefault(engine, {})[key] = value
        elif not homes:
            raise KeyError(key)
        for kind in homes:
            out.setdefault(kind, {})[key] = value
    return out


class _FlatOpenAIEnv(PydanticBaseSettingsSource):
    """``DOCPIPE_BASE_URL``, ``DOCPIPE_CONCURRENCY``...: the openai engine's settings as flat variables, as
    docs/serving.md has always documented them (``DOCPIPE_MODEL`` stays the top-level model)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items()}
        found = {name: env[f"DOCPIPE_{name.upper()}"] for name in OpenAISettings.model_fields
                 if name != "model" and env.get(f"DOCPIPE_{name.upper()}", "") != ""}
        return {"openai": found} if found else {}


class _TomlFile(PydanticBaseSettingsSource):
    """``docpipe.toml`` (or ``$DOCPIPE_CONFIG``); openai keys at top level, as older files have them, move into
    ``[openai]``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("DOCPIPE_CONFIG") or CONFIG_FILE)
        if not path.is_file():
            return {}
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from e
        data = {k.replace("-", "_"): v for k, v in data.items()}
        for key in [k for k in data if k not in Settings.model_fields and k in OpenAISettings.model_fields]:
            data.setdefault("openai", {})[key] = data.pop(key)
        return data


def _source_values(cls: type[Settings]) -> dict[str, dict[str, Any]]:
    """What each source other than flags holds, to tell where a value came from."""
    env = _deep_merge(_FlatOpenAIEnv(cls)(), EnvSettingsSource(cls)())
    return {"env": env, "toml": _TomlFile(cls)()}


def _origins(settings: Settings, sources: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for origin in ("toml", "env", "flag"):  # later ones win
        for path in _leaves(sources.get(origin, {})):
            found[path] = origin
    return found


def _leaves(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and (prefix or key in (*ENGINE_SETTINGS, "engines")):
            out += _leaves(value, path + ".")
        else:
            out.append(path)
    return out


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key),
                                                                                             Mapping) else value
    return out


def _one_line(e: ValidationError, sources: Mapping[str, Mapping[str, Any]]) -> str:
    """The first problem as ``setting NAME (from SOURCE): message``."""
    err = e.errors(include_url=False)[0]
    name = ".".join(str(p) for p in err["loc"])
    origin = next((o for o in ("flag", "env", "toml") if name in _leaves(sources.get(o, {}))
                   or str(err["loc"][0]) in sources.get(o, {})), "default")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "no such setting (docpipe config lists them)"
    return f"setting {name} (from {origin}): {msg}"
