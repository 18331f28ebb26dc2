"""Paths -> SourceFile: walk folders, sniff the type from the bytes, hash the content.

The type comes from the content, never the extension (a PNG named .jpg is a PNG). The SHA-256 of the bytes is
the document's identity, so a renamed or copied file is recognised as already done.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .models import SourceFile
from .paths import path_text

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
    """(sha256 hex, size, first 1 KiB) in one streaming read of a regular file (anything else is refused unread)."""
    with open_regular(path) as f:
        return hash_stream(f, chunk)


def hash_stream(f: BinaryIO, chunk: int = 1 << 20) -> tuple[str, int, bytes]:
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


class NotRegularFile(OSError):
    """The path is a FIFO, device, socket or folder: reading it could block forever or never end."""


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for reading only if it is a regular file, checked on the opened descriptor (so a file swapped
    for a FIFO after discovery is still refused) and opened non-blocking (so a FIFO never hangs the open)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({file_type(st.st_mode)}): never read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_type(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return "special file"


def describe(path: Path) -> SourceFile:
    """SourceFile for one existing file (raises OSError if it cannot be read)."""
    sha, size, head = hash_file(path)
    kind, mime = sniff(head)
    return SourceFile(path=path, sha256=sha, size=size, kind=kind, mime=mime)


class Skipped(NamedTuple):
    """A path discovery did not take, with why; the store keeps these so ``status`` and ``problems`` show them.

    status: "missing", "dangling_link", "symlink_loop", "not_a_file" (FIFO, device, socket) or "unreadable"."""

    path: Path
    reason: str
    status: str = "unreadable"


def why_unreadable(path: Path, e: OSError) -> Skipped:
    """An honest reason for a path that could not be opened or stat'ed."""
    if isinstance(e, NotRegularFile):
        return Skipped(path, e.strerror, "not_a_file")
    is_link = os.path.islink(path)
    if e.errno == errno.ELOOP:
        return Skipped(path, "symlink loop: the link leads back to itself", "symlink_loop")
    if e.errno == errno.ENOENT and is_link:
        return Skipped(path, f"dangling symlink: its target {path_text(os.readlink(path))} does not exist",
                       "dangling_link")
    if e.errno == errno.ENOENT:
        return Skipped(path, "no such file or directory", "missing")
    if e.errno in (errno.EACCES, errno.EPERM):
        return Skipped(path, "permission denied: docpipe cannot read it", "unreadable")
    return Skipped(path, f"cannot read: {e.strerror or e}", "unreadable")


class Listed(NamedTuple):
    """A file the listing found, to be described (read, hashed, sniffed) here or on a worker."""

    path: Path  # a Path, or a RemotePath for an object in storage
    explicit: bool  # named as such, not met inside a folder: kept even when it is not a document
    size: int  # from the listing, to size batches of work; the described size is the one that counts


def iter_paths(paths: Iterable[Path]) -> Iterator[Listed | Skipped]:
    """A Listed for each regular file under the given paths, folders walked recursively in sorted order, or a
    Skipped for what is not one.

    Symlinks are followed (the kernel resolves a chain once); a link back to a folder being walked is a loop and
    is skipped, so is a second way into a folder already walked. FIFOs, devices and sockets are never opened.
    Hidden files and folders (starting with ".") inside walked folders are skipped without a record.
    """
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as e:
            yield why_unreadable(Path(p), e)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(Path(p), [(st.st_dev, st.st_ino)], set())
        elif stat.S_ISREG(st.st_mode):
            yield Listed(Path(p), True, st.st_size)
        else:
            yield Skipped(Path(p), f"not a regular file ({file_type(st.st_mode)}): never read", "not_a_file")


def _walk(folder: Path, ancestors: list[tuple[int, int]], walked: set[tuple[int, int]]
          ) -> Iterator[Listed | Skipped]:
    walked.add(ancestors[-1])
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: os.fsencode(e.name))
    except OSError as e:
        yield why_unreadable(folder, e)
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = os.stat(path)
        except OSError as e:
            yield why_unreadable(path, e)
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                yield Skipped(path, "symlink loop: leads back to a folder it is inside of", "symlink_loop")
            elif key not in walked:
                yield from _walk(path, [*ancestors, key], walked)
        elif stat.S_ISREG(st.st_mode):
            yield Listed(path, False, st.st_size)
        else:
            yield Skipped(path, f"not a regular file ({file_type(st.st_mode)}): never read", "not_a_file")


def discover(paths: Iterable[Path]) -> Iterator[SourceFile | Skipped]:
    """SourceFile for each candidate document, or a Skipped (path, reason, status) for one that cannot be read;
    URLs (s3://, gs://, az://) are listed in object storage by ``docpipe.remote``.

    The cheap part (``list_paths``) and the expensive one (``describe_listed``: every byte read and hashed) are
    separate so that ``docpipe.ray_discover`` can run the second on a cluster with the same results.
    """
    for item in list_paths(paths):
        if isinstance(item, Skipped):
            yield item
        elif (found := describe_listed(item)) is not None:
            yield found


def list_paths(paths: Iterable[Path]) -> Iterator[Listed | Skipped]:
    """Every file under ``paths`` (folders walked, prefixes listed) without reading one, in discovery's order."""
    from .remote import as_url, list_remote

    for p in paths:
        url = as_url(p)
        yield from list_remote(url) if url else iter_paths([p])


def describe_listed(item: Listed) -> SourceFile | Skipped | None:
    """The SourceFile for a listed file, a Skipped when it cannot be read now, or None when it was met inside a
    folder and is not a candidate: only files whose bytes look like a document or whose extension says it should
    be one are (a broken .pdf is reported; notes and truth.jsonl are left alone). Never raises for a file."""
    from .remote import RemotePath, describe_remote

    if isinstance(item.path, RemotePath):
        found = describe_remote(item.path)
    else:
        try:
            found = describe(item.path)
        except OSError as e:
            return why_unreadable(item.path, e)
    if isinstance(found, SourceFile) and found.kind in ("unsupported", "empty") and not item.explicit \
            and item.path.suffix.lower() not in DOCUMENT_EXTENSIONS:
        return None
    return found
