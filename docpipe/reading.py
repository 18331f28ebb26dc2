"""Read a discovered file again for parsing, and prove the bytes parsed are the bytes its identity names.

Discovery hashes a file; parsing happens later, maybe minutes later in another process. Whatever happened in
between (the file deleted, truncated, rewritten, swapped for a FIFO) must not store one content's data under
another content's id. So the file is read once into memory, hashed while read, compared with the discovered
hash, and parsed from exactly those bytes. Files over the in-memory limit are checked the same way and then
opened by path (a change during their parse is the one window left).
"""

from __future__ import annotations

import errno
import hashlib

from .discover import NotRegularFile, open_regular
from .errors import InputError
from .models import SourceFile
from .remote import is_remote, open_remote


class ChangedError(InputError):
    """The file is not what discovery saw any more; the next run reads it afresh."""

    status = "failed"


def read_verified(src: SourceFile, max_in_memory: int) -> bytes | None:
    """The file's bytes when they still hash to ``src.sha256`` (None for a file over ``max_in_memory``: checked,
    then left to be opened by path); ChangedError with what happened otherwise."""
    h = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    remote = is_remote(src.path)
    keep = src.size <= max_in_memory or remote  # an object in storage has no path to open it by later
    try:
        with open_remote(src.path) if remote else open_regular(src.path) as f:
            while block := f.read(1 << 20):
                h.update(block)
                size += len(block)
                if keep:
                    if size > max_in_memory:
                        raise ChangedError(_changed(src, size, grew=True))
                    chunks.append(block)
    except NotRegularFile as e:
        raise ChangedError(f"replaced after it was found: now {e.strerror}") from e
    except FileNotFoundError as e:
        raise ChangedError("deleted or moved after it was found: nothing at this path now") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ChangedError("now a symlink loop (it was a file when found)") from e
        raise ChangedError(f"cannot be read any more: {e.strerror or e}") from e
    if h.hexdigest() != src.sha256:
        raise ChangedError(_changed(src, size))
    return b"".join(chunks) if keep else None


def _changed(src: SourceFile, size: int, grew: bool = False) -> str:
    if size == 0:
        return f"emptied after it was found (0 bytes now, {src.size} then): nothing left to read"
    if size < src.size:
        return (f"shrank after it was found ({size} bytes now, {src.size} then: cut short or rewritten): "
                "re-run to read what is there")
    if size > src.size or grew:
        return f"grew after it was found (over {src.size} bytes now): re-run to read the new content"
    return "rewritten after it was found (same size, other bytes): re-run to read the new content"
