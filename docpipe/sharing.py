"""One DuckDB file, many ingests and readers: open it only to commit, and claim documents before working on them.

DuckDB lets one read-write process or many read-only ones hold a file. An ingest therefore opens the file only
for a moment (claim a few documents, commit a batch of results, renew its claims) and closes it again, so
``docpipe query``, ``status`` and ``export`` get their turn between commits and see every committed batch.

Two ingests on one database share the work through the ``claims`` table: a document is worked on only by the
process holding an unexpired claim on it for (schema, engine). Claims are renewed by a heartbeat thread and
dropped when the result is committed; a process that dies leaves claims that expire after the lease
(``DOCPIPE_CLAIM_LEASE`` seconds, default 120), or at once when its process id is gone from this host.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .models import DocResult, SourceFile
from .schemas import SchemaInfo
from .store import Store, lock_wait_s

#: How long a writer waits for readers to let go of the file before giving up (a long query holds it).
WRITER_WAIT_S = 600.0
#: Documents checked per claim query (an IN list) while looking for unclaimed ones.
_PROBE = 256
#: Commit a batch once this many results wait and MIN_COMMIT_GAP has passed, or FLUSH_EVERY_SECONDS has: opening
#: the file costs the same for 1 result or 1,000, so a fast stream lands in few, large commits.
FLUSH_EVERY_DOCS = 32
MIN_COMMIT_GAP = 1.0
FLUSH_EVERY_SECONDS = 2.0
#: Claims grow (doubling, up to MAX_CLAIM) while a chunk lasts under a second, so claiming keeps up with many workers.
MAX_CLAIM = 4096


def claim_lease_s() -> float:
    """Seconds a claim lives without renewal (DOCPIPE_CLAIM_LEASE, default 120)."""
    try:
        return max(1.0, float(os.environ.get("DOCPIPE_CLAIM_LEASE", "120")))
    except ValueError:
        return 120.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_owner() -> str:
    """host:pid:nonce, so a claim names a process and a process can tell whether a claimant on its host is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone; other hosts wait for the lease."""
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(rest.partition(":")[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OSError):
        return True
    return True


@dataclass
class ClaimRound:
    """What one claim call found: documents now ours, and how many others still hold."""

    claimed: list[SourceFile] = field(default_factory=list)
    held_elsewhere: int = 0


class SharedStore:
    """The ingest's side of a shared database: brief sessions, claims, a heartbeat. Thread-safe."""

    def __init__(self, db: str | Path, schema: SchemaInfo, engine: str, owner: str | None = None,
                 lease_s: float | None = None, wait_s: float = WRITER_WAIT_S, force: bool = False,
                 retry_invalid: bool = False) -> None:
        self.db = str(db)
        self.schema = schema
        self.engine = engine
        self.owner = owner or new_owner()
        self.lease_s = lease_s or claim_lease_s()
        self.wait_s = wait_s
        self.force = force
        self.retry_invalid = retry_invalid
        self.since = _now()  # results written from here on count as this run's (see _done_among)
        self._lock = threading.Lock()
        self._migrated = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.last_commit = time.perf_counter()
        self.done_elsewhere = 0  # pending documents found done by another process

    @contextmanager
    def session(self) -> Iterator[Store]:
        """The store, open read-write for the length of the block (and only then)."""
        with self._lock:
            # the first open waits only as long as a reader would: a file someone keeps open is reported at once
            wait = self.wait_s if self._migrated else min(self.wait_s, lock_wait_s())
            store = Store.open(self.db, wait_s=wait, migrate=not self._migrated)
            self._migrated = True
            try:
                yield store
            finally:
                store.close()

    # -- claims -----------------------------------------------------------------------------------------------------
    def claim(self, pending: list[SourceFile], n: int) -> ClaimRound:
        """Claim up to ``n`` of ``pending`` (in order) that are neither done nor held by a live claim.

        ``pending`` is updated in place: claimed and done documents leave it; ones held by others stay, to be
        looked at again.
        """
        found = ClaimRound()
        keep: list[SourceFile] = []
        with self.session() as store:
            i = 0
            while i < len(pending) and len(found.claimed) < n:
                probe = pending[i:i + _PROBE]
                i += len(probe)
                ids = list({s.sha256 for s in probe})
                done = self._done_among(store, ids)
                held = self._held_among(store, ids)
                for s in probe:
                    if s.sha256 in done:
                        self.done_elsewhere += 1
                        continue
                    if s.sha256 in held or len(found.claimed) >= n:
                        keep.append(s)
                        found.held_elsewhere += s.sha256 in held
                        continue
                    found.claimed.append(s)
            self._insert_claims(store, [s.sha256 for s in found.claimed])
        pending[:] = keep + pending[i:]
        return found

    def _done_among(self, store: Store, ids: list[str]) -> set[str]:
        """Which of ``ids`` need no work: anything written since this run started (by anyone, failures too),
        and, as ``Store.done_ids``, older results this run does not redo (--force redoes all, --retry-invalid
        invalid ones; failed ones are always redone)."""
        from .models import Status

        redo = [s.value for s in Status if s.retry] + (["invalid"] if self.retry_invalid else [])
        old_ok = "FALSE" if self.force else f"status NOT IN ({','.join('?' * len(redo))})"
        rows = store.con.execute(
            f"SELECT doc_id FROM extractions WHERE schema_name = ? AND engine = ? "
            f"AND doc_id IN ({','.join('?' * len(ids))}) AND (created_at >= ? OR {old_ok})",
            [self.schema.name, self.engine, *ids, self.since, *([] if self.force else redo)]).fetchall()
        return {r[0] for r in rows}

    def _held_among(self, store: Store, ids: list[str]) -> set[str]:
        rows = store.con.execute(
            f"SELECT doc_id, owner FROM claims WHERE schema_name = ? AND engine = ? AND owner <> ? "
            f"AND expires_at > ? AND doc_id IN ({','.join('?' * len(ids))})",
            [self.schema.name, self.engine, self.owner, _now(), *ids]).fetchall()
        alive: dict[str, bool] = {}
        return {d for d, o in rows if alive.setdefault(o, owner_alive(o))}

    def _insert_claims(self, store: Store, ids: list[str]) -> None:
        if not ids:
            return
        now = _now()
        exp = now + dt.timedelta(seconds=self.lease_s)
        rows = [{"doc_id": d, "schema_name": self.schema.name, "engine": self.engine, "owner": self.owner,
                 "claimed_at": now, "expires_at": exp} for d in ids]
        with store.transaction():
            store._bulk("claims", rows, replace_keys=("doc_id", "schema_name", "engine"))

    def renew(self, store: Store | None = None) -> None:
        """Push our claims' expiry one lease ahead."""
        if store is None:
            with self.session() as s:
                return self.renew(s)
        store.con.execute("UPDATE claims SET expires_at = ? WHERE owner = ?",
                          [_now() + dt.timedelta(seconds=self.lease_s), self.owner])

    def release(self, ids: Sequence[str] | None = None, store: Store | None = None) -> None:
        """Drop our claims on ``ids`` (all of ours when None)."""
        if store is None:
            with self.session() as s:
                return self.release(ids, s)
        if ids is None:
            store.con.execute("DELETE FROM claims WHERE owner = ?", [self.owner])
        elif ids:
            store.con.execute(f"DELETE FROM claims WHERE owner = ? AND schema_name = ? AND engine = ? "
                              f"AND doc_id IN ({','.join('?' * len(ids))})",
                              [self.owner, self.schema.name, self.engine, *ids])

    def claimed(self, pending: list[SourceFile], first: int) -> Iterator[SourceFile]:
        """Documents claimed from ``pending`` a chunk at a time, until none is free (some may be held elsewhere)."""
        chunk = first
        while True:
            t0 = time.perf_counter()
            got = self.claim(pending, chunk).claimed
            if not got:
                return
            yield from got
            if time.perf_counter() - t0 < 1.0:
                chunk = min(chunk * 2, MAX_CLAIM)

    # -- results ----------------------------------------------------------------------------------------------------
    def commit_due(self, waiting: int) -> bool:
        """Whether ``waiting`` buffered results should be committed now (see FLUSH_EVERY_DOCS)."""
        since = time.perf_counter() - self.last_commit
        return waiting > 0 and (since >= FLUSH_EVERY_SECONDS
                                or (waiting >= FLUSH_EVERY_DOCS and since >= MIN_COMMIT_GAP))

    def commit(self, results: Sequence[DocResult], run_id: str) -> None:
        """Write a batch (one transaction), then drop its claims and renew the rest."""
        if not results:
            return
        with self.session() as store:
            store.write(results, self.schema, run_id)
            self.release([r.source.sha256 for r in results], store)
            self.renew(store)
        self.last_commit = time.perf_counter()

    # -- heartbeat --------------------------------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        """Renew our claims every quarter lease from a daemon thread, so slow documents keep their claim."""
        if self._beat is not None:
            return

        def beat() -> None:
            while not self._stop.wait(self.lease_s / 4):
                try:
                    self.renew()
                except Exception:  # a busy file this time: the next beat tries again, well within the lease
                    pass

        self._beat = threading.Thread(target=beat, name="docpipe-claims", daemon=True)
        self._beat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
