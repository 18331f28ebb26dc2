"""Paths -> SourceFile: walk folders, sniff the type from the bytes, hash the content.

The type comes from the content, never the extension (a PNG named .jpg is a PNG). The SHA-256 of the bytes is
the document's identity, so a renamed or copied file is recognised as already done.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .models import SourceFile

#: Extensions that make a file in a walked folder count as a document even when its bytes are not one
#: (a broken .pdf is reported, a README.md next to it is not).
DOCUMENT_EXTENSIONS = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".jfif"}

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(head: bytes) -> tuple[str, str]:
    """(kind, mime) from the first bytes of a file: kind is "pdf", "image", "empty" or "unsupported"."""
    if not head:
        return "empty", "application/octet-stream"
    if b"%PDF-" in head[:1024]:
        return "pdf", "application/pdf"
    for magic, mime in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image", mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    return "unsupported", "application/octet-stream"


def hash_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int, bytes]:
    """(sha256 hex, size, first 1 KiB) in one streaming read."""
    with open(path, "rb") as f:
        return hash_stream(f, chunk)


def hash_stream(f: Any, chunk: int = 1 << 20) -> tuple[str, int, bytes]:
    """(sha256 hex, size, first 1 KiB) of a binary stream (a local file or an object in storage), read once."""
    h = hashlib.sha256()
    size = 0
    head = b""
    while block := f.read(chunk):
        if not head:
            head = block[:1024]
        h.update(block)
        size += len(block)
    return h.hexdigest(), size, head


def describe(path: Path) -> SourceFile:
    """SourceFile for one existing file (raises OSError if it cannot be read)."""
    sha, size, head = hash_file(path)
    kind, mime = sniff(head)
    return SourceFile(path=path, sha256=sha, size=size, kind=kind, mime=mime)


def iter_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named_explicitly) for each file under the given paths, folders walked recursively in sorted order.

    Hidden files and folders (starting with ".") inside walked folders are skipped.
    """
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name, False
        else:
            yield p, True


def discover(paths: Iterable[Path]) -> Iterator[SourceFile | tuple[Path, str]]:
    """SourceFile for each candidate document, or (path, reason) for one that cannot even be read; URLs
    (s3://, gs://, az://) are listed in object storage by ``docpipe.remote``."""
    from .remote import as_url, discover_remote

    for p in paths:
        url = as_url(p)
        yield from discover_remote(url) if url else _discover_local([p])


def _discover_local(paths: Iterable[Path]) -> Iterator[SourceFile | tuple[Path, str]]:
    """SourceFile for each candidate document, or (path, reason) for one that cannot even be read.

    A file met while walking a folder is only a candidate when its bytes look like a document or its
    extension says it should be one; other files (notes, truth.jsonl) are left alone.
    """
    for path, explicit in iter_paths(paths):
        if not path.exists():
            yield path, "no such file or directory"
            continue
        try:
            src = describe(path)
        except OSError as e:
            yield path, f"cannot read: {e.strerror or e}"
            continue
        if src.kind in ("unsupported", "empty") and not explicit:
            if path.suffix.lower() not in DOCUMENT_EXTENSIONS:
                continue
        yield src
