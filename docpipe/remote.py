"""Documents in object storage (s3://, gs://, az://, ... through fsspec): list, hash, and read them.

A remote document is identified exactly like a local one, by the SHA-256 of its bytes, so resume, duplicates
and skipped work behave the same. Discovery streams each object once to hash it; the engine reads it again when
it processes the document (in whichever process or machine that is), so nothing is spooled to local disk.
Credentials and endpoints come from the usual places (AWS_* variables, ~/.aws, FSSPEC_S3_ENDPOINT_URL, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .discover import Listed, Skipped, hash_stream, sniff
from .models import SourceFile

_URL = re.compile(r"^([a-z][a-z0-9+.-]+):/+(.*)$")
_COMMON = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "http", "https"}
#: The package fsspec needs for each common protocol (``pip install 'docpipe[s3]'`` brings s3fs).
_PACKAGE = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
            "abfss": "adlfs", "adl": "adlfs"}


class RemotePath(str):
    """An object's URL where a path is expected: ``str()`` is the URL, ``.name`` and ``.suffix`` as for a Path."""

    @property
    def name(self) -> str:
        return self.rstrip("/").rpartition("/")[2]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind("."):] if "." in name.lstrip(".") else ""


def as_url(p: str | Path) -> str | None:
    """The URL ``p`` names when it is one fsspec knows (``s3://b/k``; also ``s3:/b/k``, what Path makes of it)."""
    m = _URL.match(str(p))
    if not m or m.group(1) == "file":
        return None
    try:
        from fsspec.registry import known_implementations
    except ImportError:  # list_remote says what to install
        known_implementations = _COMMON
    if m.group(1) not in known_implementations:
        return None
    return f"{m.group(1)}://{m.group(2)}"


def is_remote(p: Any) -> bool:
    return isinstance(p, RemotePath) or as_url(p) is not None


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def list_remote(url: str) -> Iterator[Listed | Skipped]:
    """A Listed for each object under ``url`` (a prefix is walked in sorted order, hidden names skipped), or a
    Skipped when it cannot be listed; nothing is read (``describe_remote`` does that)."""
    protocol = url.partition("://")[0]
    try:
        import fsspec

        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as e:
        need = " ".join(["fsspec", _PACKAGE.get(protocol, "")]).strip()
        yield Skipped(RemotePath(url), f"reading {protocol}:// needs {need} (pip install {need}): {_reason(e)}")
        return
    except Exception as e:
        yield Skipped(RemotePath(url), f"cannot open: {_reason(e)}")
        return
    try:
        info = fs.info(root)
        explicit = info.get("type") != "directory"
        found = {root: info} if explicit else fs.find(root, detail=True)
    except FileNotFoundError:
        yield Skipped(RemotePath(url), "no such object or prefix", "missing")
        return
    except Exception as e:  # missing bucket, no credentials, unreachable endpoint: one line, not a traceback
        yield Skipped(RemotePath(url), f"cannot list: {_reason(e)}")
        return
    for name in sorted(found):
        rel = name[len(root):] if name.startswith(root) else name
        if any(part.startswith(".") for part in rel.split("/") if part):
            continue
        yield Listed(RemotePath(f"{protocol}://{name}"), explicit,  # type: ignore[arg-type]
                     int(found[name].get("size") or 0))


def describe_remote(path: RemotePath) -> SourceFile | Skipped:
    """The SourceFile for one object, its bytes streamed once to hash them, or a Skipped when it cannot be read."""
    try:
        import fsspec

        fs, name = fsspec.core.url_to_fs(str(path))  # the listing's own filesystem: fsspec caches instances
        with fs.open(name, "rb") as f:
            sha, size, head = hash_stream(f)
    except Exception as e:
        return Skipped(path, f"cannot read: {_reason(e)}")  # type: ignore[arg-type]
    kind, mime = sniff(head)
    return SourceFile(path=path, sha256=sha, size=size, kind=kind, mime=mime)  # type: ignore[arg-type]


def open_remote(path: Any) -> Any:
    """A binary stream over an object in storage (what ``reading.read_verified`` reads and checks)."""
    import fsspec

    return fsspec.open(as_url(path) or str(path), "rb").open()
