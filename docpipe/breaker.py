"""Fail fast when the cause is global: if the first documents of a run all fail inside the engine (a server that
refuses connections or answers errors, a model that cannot load), the rest would fail the same way, slowly.

Engine-agnostic: it looks only at each document's status and the stage of its first error. Input problems
(encrypted, empty, unsupported, too large) say nothing about the engine and are not counted; one success turns
the breaker off for the rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import EngineOutput, Status

BREAK_AFTER = 3  # engine failures in a row, before any success, that stop a run


@dataclass
class Breaker:
    limit: int = BREAK_AFTER  # 0: never stop
    reasons: list[str] = field(default_factory=list)
    proven: bool = False  # the engine has produced a result: failures from now on are the documents' own

    def record(self, out: EngineOutput, status: Status) -> str | None:
        """Note one document's outcome; the message to stop with once ``limit`` engine failures came first."""
        if self.proven or self.limit <= 0:
            return None
        if status in (Status.OK, Status.INVALID):
            self.proven = True
            return None
        if status is Status.FAILED and out.errors and out.errors[0].stage == "engine":
            self.reasons.append(out.errors[0].message)
            if len(self.reasons) >= self.limit:
                return (f"stopped: the first {len(self.reasons)} documents all failed in the {out.engine or 'the'} "
                        f"engine, so the cause is not the files: {self.reasons[-1]}. Fix it and run the same "
                        "command again; the documents not done are still to do")
        return None
