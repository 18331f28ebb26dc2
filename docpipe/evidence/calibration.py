"""How well confidence and checks tell right values from wrong ones, against a truth file: accuracy by confidence
band (``docpipe eval`` prints it) and what the failed checks catch. Scored like docpipe.evaluate (its ``match``),
on the top-level fields the truth names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..discover import hash_file
from ..evaluate import load_truth, match
from ..store import Store

BANDS = (0.0, 0.5, 0.7, 0.8, 0.9)


@dataclass
class Band:
    low: float
    high: float
    right: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass
class Calibration:
    bands: list[Band] = field(default_factory=list)
    caught: int = 0  # wrong values a failed check involves
    wrong: int = 0
    flagged_right: int = 0  # right values a failed check involves
    right: int = 0


def calibrate(db: Path, folder: Path, truth_path: Path, schema_name: str, engine: str) -> Calibration:
    """Each truth field that has evidence: its confidence band, whether it is right, whether a check failed on it."""
    cal = Calibration(bands=[Band(lo, hi) for lo, hi in zip(BANDS, (*BANDS[1:], 1.01))])
    with Store.open(db, read_only=True) as store:
        for entry in load_truth(truth_path):
            f = folder / entry["file"]
            if not f.exists():
                continue
            sha = hash_file(f)[0]
            row = store.con.execute("SELECT data FROM extractions WHERE doc_id = ? AND schema_name = ? AND "
                                    "engine = ? AND status = 'ok'", [sha, schema_name, engine]).fetchone()
            if not row:
                continue
            data = json.loads(row[0])
            conf = dict(store.con.execute(
                "SELECT field, confidence FROM field_evidence WHERE doc_id = ? AND schema_name = ? AND engine = ?",
                [sha, schema_name, engine]).fetchall())
            failed = {fl for (fields,) in store.con.execute(
                "SELECT fields FROM check_results WHERE doc_id = ? AND schema_name = ? AND engine = ? "
                "AND NOT passed", [sha, schema_name, engine]).fetchall() for fl in fields}
            for name, tv in entry.get("fields", {}).items():
                if name not in conf or isinstance(tv, (list, dict)):
                    continue
                ok = match(name, tv, data.get(name))
                band = next(b for b in cal.bands if b.low <= conf[name] < b.high)
                band.total += 1
                band.right += ok
                if ok:
                    cal.right += 1
                    cal.flagged_right += name in failed
                else:
                    cal.wrong += 1
                    cal.caught += name in failed
    return cal
