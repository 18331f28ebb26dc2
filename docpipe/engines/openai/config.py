"""Settings of the serve-anywhere engine: the typed ``OpenAISettings`` and the resolved ``ServerConfig``.

Values come from ``docpipe.config.Settings`` (flag > ``DOCPIPE_*`` variable > ``[openai]`` in ``docpipe.toml`` >
the defaults here), so that many workers on many machines can share one file instead of long command lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import EngineUnavailable

if TYPE_CHECKING:
    from ..base import EngineOptions

#: Image formats a data URL may carry (why JPEG is the default: docs/performance.md).
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


class OpenAISettings(BaseModel):
    """Settings of the openai engine; each is also a ``DOCPIPE_<NAME>`` variable (``DOCPIPE_BASE_URL``...)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | list[str] | None = Field(None, description="OpenAI-compatible server URL(s), comma-separated.")
    model: str | None = Field(None, description="Served model name when --model is not given; default: the "
                              "server's first.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key.")
    concurrency: int = Field(4, description="Requests in flight at once (over all servers).")
    timeout_s: float = Field(300.0, description="Seconds one request may take (a page group on a busy GPU can take "
                             "minutes).")
    connect_timeout_s: float = Field(10.0, description="Seconds to connect to a server.")
    retries: int = Field(4, description="Attempts after the first, on 429, 5xx, connection errors and timeouts.")
    backoff_s: float = Field(1.0, description="First retry waits about this long, doubling each time, with jitter.")
    backoff_max_s: float = Field(60.0, description="Longest wait between retries, in seconds.")
    max_tokens: int = Field(4096, description="Answer budget of one request, in tokens.")
    summary_words: int = Field(200, description="Words a --summarize answer is asked to have.")
    image_format: str = Field("jpeg", description="How pages travel: jpeg, png or webp.")
    jpeg_quality: int = Field(90, description="JPEG quality of page images.")
    pages_per_request: int = Field(8, description="Pages sent in one request; longer documents go in groups, "
                                   "merged.")
    thinking_param: str = Field("auto", description="How --thinking is asked for: auto, chat_template_kwargs, "
                                "reasoning_effort, think or none.")


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given (proxies)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineUnavailable(f"base URL {url!r} is not an http(s) URL like http://127.0.0.1:8000/v1")
    path = parts.path if parts.path not in ("", "/") else "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def load_config(options: EngineOptions) -> ServerConfig:
    """Resolve the settings for ``options``: its typed ``openai`` settings (from ``Settings``: flag > env > toml;
    looked up afresh when it carries none), then ``EngineOptions.extra`` overrides (scripts); ``--model`` beats
    the settings' model. Raises EngineUnavailable for bad values."""
    typed = options.settings.get("openai")
    if typed is None:
        from ...config import Settings
        from ...errors import ConfigError

        try:
            typed = Settings.load().openai
        except ConfigError as e:
            raise EngineUnavailable(str(e)) from e
    values = dict(typed) if isinstance(typed, OpenAISettings) else dict(typed or {})
    values.update({k: v for k, v in (options.extra or {}).items() if k in OpenAISettings.model_fields
                   and v is not None})
    try:
        s = OpenAISettings.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        raise EngineUnavailable(f"openai setting {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    urls = s.base_url.split(",") if isinstance(s.base_url, str) else list(s.base_url or [])
    cfg = ServerConfig(base_urls=tuple(normalise_base_url(u) for u in urls if str(u).strip()),
                       model=options.model or s.model,
                       **s.model_dump(exclude={"base_url", "model"}))
    if cfg.image_format not in IMAGE_FORMATS:
        raise EngineUnavailable(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    if cfg.thinking_param not in THINKING_PARAMS:
        raise EngineUnavailable(f"thinking_param must be one of {', '.join(THINKING_PARAMS)}")
    if cfg.concurrency < 1 or cfg.pages_per_request < 1:
        raise EngineUnavailable("concurrency and pages_per_request must be at least 1")
    return cfg
