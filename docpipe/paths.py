"""File names of any bytes: stored losslessly, shown safely.

POSIX names are bytes; Python hands undecodable ones over as lone surrogates (``surrogateescape``), which DuckDB,
Arrow and terminals refuse or mangle. The store keeps two forms of every path: ``path_text`` (valid UTF-8 kept,
each undecodable byte written ``\\xNN``) for reading and SQL, and the raw bytes for getting back to the file.
What reaches a terminal goes through ``shown``, so a name or a value with ESC or other control characters can
never drive the terminal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# C0 controls, DEL and the C1 controls (U+0080-U+009F: \x9b is a one-byte CSI on some terminals), plus the
# bidirectional overrides that reorder what is displayed
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def path_bytes(path: str | os.PathLike[str]) -> bytes:
    """The path's bytes exactly as the file system has them."""
    return os.fsencode(path)


def path_text(path: str | os.PathLike[str]) -> str:
    """A valid-UTF-8 text of the path: undecodable bytes become ``\\xNN`` (surrogateescape made explicit)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def from_stored(text: str, raw: bytes | None) -> Path:
    """The file a stored path names: its raw bytes when recorded, else its text."""
    return Path(os.fsdecode(raw)) if raw else Path(text)


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def shown(value: object, keep_lines: bool = False) -> str:
    """Text safe for a terminal: control characters (ESC, CSI, BEL, CR...) written as ``\\xNN``; lone surrogates
    (undecodable name bytes) as ``\\xNN`` too. ``keep_lines`` leaves newlines and tabs in multi-line values."""
    s = value if isinstance(value, str) else str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in s):
        s = path_text(s)
    return (_UNSAFE_KEEP_LINES if keep_lines else _UNSAFE).sub(_escape, s)


_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_safe(text: str) -> str:
    """JSON text with DEL, C1 controls and bidi overrides written as ``\\u00XX`` escapes: the same JSON value,
    nothing a terminal acts on (``json.dumps`` already escapes C0 controls such as ESC)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
