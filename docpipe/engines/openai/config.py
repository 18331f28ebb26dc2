"""Settings of the serve-anywhere engine, from flags, ``DOCPIPE_*`` variables or a ``docpipe.toml`` file.

Precedence: a flag (``EngineOptions.extra``) beats an environment variable, which beats the config file
(``$DOCPIPE_CONFIG`` or ``./docpipe.toml``, keys in an ``[openai]`` table or at top level), which beats the
defaults here. One place, so that many workers on many machines can share one file instead of long command lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import EngineUnavailable

#: Image formats a data URL may carry; JPEG q90 is 5x faster to encode than PNG at 2.6 MP (docs/benchmarks.md).
IMAGE_FORMATS = ("jpeg", "png", "webp")
THINKING_PARAMS = ("auto", "chat_template_kwargs", "reasoning_effort", "think", "none")


@dataclass(frozen=True)
class ServerConfig:
    """Everything the engine needs to talk to one or more OpenAI-compatible servers."""

    base_urls: tuple[str, ...] = ()
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    timeout_s: float = 300.0  # one request (a page group on a busy GPU can take minutes)
    connect_timeout_s: float = 10.0
    retries: int = 4  # attempts after the first, for 429 / 5xx / connection errors / timeouts
    backoff_s: float = 1.0  # first retry waits about this long, doubling each time, with jitter
    backoff_max_s: float = 60.0
    max_tokens: int = 4096
    summary_words: int = 200
    image_format: str = "jpeg"
    jpeg_quality: int = 90
    pages_per_request: int = 8
    thinking_param: str = "auto"

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


_ENV = {f.name: "DOCPIPE_" + f.name.upper() for f in fields(ServerConfig)}
_ENV["base_urls"] = "DOCPIPE_BASE_URL"


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given (proxies)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineUnavailable(f"base URL {url!r} is not an http(s) URL like http://127.0.0.1:8000/v1")
    path = parts.path if parts.path not in ("", "/") else "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _config_file() -> dict[str, Any]:
    path = Path(os.environ.get("DOCPIPE_CONFIG") or "docpipe.toml")
    if not path.is_file():
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EngineUnavailable(f"cannot read config file {path}: {e}") from e
    section = data.get("openai", data)
    return {k.replace("-", "_"): v for k, v in section.items() if not isinstance(v, dict)}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(ServerConfig, name, None)
    if name == "base_urls":
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(normalise_base_url(u) for u in items if str(u).strip())
    if value is None or isinstance(default, str) or default is None:
        return value
    try:
        return type(default)(value)
    except (TypeError, ValueError) as e:
        raise EngineUnavailable(f"setting {name}={value!r} is not a {type(default).__name__}") from e


def load_config(options: Any) -> ServerConfig:
    """Resolve the settings for ``options`` (an EngineOptions); raises EngineUnavailable for bad values."""
    extra = dict(options.extra or {})
    flags: dict[str, Any] = {"base_urls": extra.get("base_url"), "model": options.model,
                             "api_key_env": extra.get("api_key_env"), "concurrency": extra.get("concurrency")}
    flags.update({k: v for k, v in extra.items() if k in _ENV and k != "base_urls"})
    file = _config_file()
    if "base_url" in file:
        file["base_urls"] = file.pop("base_url")
    values: dict[str, Any] = {}
    for name, env in _ENV.items():
        for source in (flags.get(name), os.environ.get(env), file.get(name)):
            if source not in (None, ""):
                values[name] = _coerce(name, source)
                break
    cfg = ServerConfig(**values)
    if cfg.image_format not in IMAGE_FORMATS:
        raise EngineUnavailable(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    if cfg.thinking_param not in THINKING_PARAMS:
        raise EngineUnavailable(f"thinking_param must be one of {', '.join(THINKING_PARAMS)}")
    if cfg.concurrency < 1 or cfg.pages_per_request < 1:
        raise EngineUnavailable("concurrency and pages_per_request must be at least 1")
    return cfg
