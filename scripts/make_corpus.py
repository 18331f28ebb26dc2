#!/usr/bin/env python3
"""Generate a varied corpus of FICTITIOUS invoices and receipts with truth, to check that rules generalise.

    python scripts/make_corpus.py --out corpus [--split dev|held|ci|both] [--per-kind 30] \
        [--kinds invoices,scans,receipts]

Every document is drawn from its own seed: language (en/de/fr/es/it/nl), label phrasing, layout (labels left
of or above values, meta boxes, totals rows or columns), fonts, page size, table shape, distractor dates and
amounts (order, delivery, paid, balance, shipping, discount), and for images the scan quality (blur, noise,
rotation, contrast, a fax-quality 100 dpi binarised scan). Two splits by seed range:

- ``dev``  (seeds 1000+): look at these while developing;
- ``held`` (seeds 5000+): the held-back half; only score it (``docpipe eval``), never read its mismatches.

Writes OUT/<split>/{invoices,scans,receipts}/ with a truth.jsonl each (devset format). Deterministic.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from corpus_vocab import (  # noqa: E402
    CITIES,
    INVOICE,
    ITEMS,
    NAME_A,
    NAME_B,
    PEOPLE,
    RECEIPT,
    SHOP_ITEMS,
    SLOGANS,
    STREETS,
    SUFFIX,
    fmt_date,
    fmt_money,
    fmt_num,
)
from make_samples import A4, LETTER, Canvas, new_doc, render_grey, save_pdf, scanify  # noqa: E402

LANGS = ["en", "de", "fr", "es", "it", "nl"]
SEEDS = {"dev": 1000, "held": 5000, "ci": 9000}  # ci: the tests' own small split
CENT = Decimal("0.01")
FONTSETS = [("sans", "sansb"), ("serif", "serifb"), ("mono", "monob"), ("sans", "serifb")]


def q2(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def company(rng: random.Random, lang: str) -> str:
    return f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {rng.choice(SUFFIX[lang])}"


def address(rng: random.Random, lang: str) -> list[str]:
    return [rng.choice(STREETS[lang]).format(n=rng.randint(2, 190)), rng.choice(CITIES[lang])]


# ---------------------------------------------------------------------------------------------------------- invoices
def invoice_data(rng: random.Random, lang: str) -> dict:
    cur = rng.choice(["USD", "GBP", "EUR"]) if lang == "en" else "EUR"
    issued = date(2024, 1, 1) + timedelta(days=rng.randint(0, 700))
    rate = rng.choice([Decimal(r) for r in {"en": ["20", "10", "8.25", "0"], "de": ["19", "7"], "fr": ["20", "10"],
                                             "es": ["21", "10"], "it": ["22", "10"], "nl": ["21", "9"]}[lang]])
    items = []
    for _ in range(rng.randint(1, 6)):
        qty = Decimal(rng.choice([1, 1, 2, 3, 5, 10, 12]))
        unit = q2(Decimal(rng.randint(150, 250000)) / 100)
        items.append({"description": rng.choice(ITEMS), "quantity": qty, "unit_price": unit, "amount": q2(qty * unit)})
    extra = []
    if rng.random() < 0.25:
        extra.append(("discount", -q2(sum(i["amount"] for i in items) * Decimal("0.05"))))
    if rng.random() < 0.25:
        extra.append(("shipping", q2(Decimal(rng.randint(500, 4000)) / 100)))
    subtotal = sum(i["amount"] for i in items) + sum(v for _, v in extra)
    tax = q2(subtotal * rate / 100)
    prefix = rng.choice(["INV-", "", "RE-", "F", "2024/", "No "])
    return dict(lang=lang, cur=cur, issued=issued, due=issued + timedelta(days=rng.choice([7, 14, 30, 60])),
                vendor=company(rng, lang), vaddr=address(rng, lang), customer=company(rng, lang),
                caddr=address(rng, lang), number=f"{prefix}{rng.randint(100, 99999):05d}".replace("No ", ""),
                rate=rate, items=items, extra=extra, subtotal=subtotal, tax=tax, total=subtotal + tax,
                paid=q2((subtotal + tax) * Decimal("0.3")) if rng.random() < 0.2 else None,
                order_date=issued - timedelta(days=rng.randint(3, 40)),
                delivery=issued - timedelta(days=rng.randint(0, 9)))


def invoice_truth(d: dict, with_due: bool) -> dict:
    f = {"invoice_number": d["number"], "invoice_date": d["issued"].isoformat(), "vendor_name": d["vendor"],
         "customer_name": d["customer"], "currency": d["cur"], "subtotal": float(d["subtotal"]), "tax": float(d["tax"]),
         "total": float(d["total"]),
         "line_items": [{k: float(v) if k != "description" else v for k, v in i.items()} for i in d["items"]]}
    if with_due:
        f["due_date"] = d["due"].isoformat()
    return f


def draw_invoice(d: dict, rng: random.Random, path: pathlib.Path) -> dict:
    """One invoice PDF; returns its truth fields."""
    lang = d["lang"]
    v = {k: rng.choice(opts) for k, opts in INVOICE[lang].items()}
    font, bold = rng.choice(FONTSETS)
    size = rng.choice([A4, LETTER])
    ds, ms = rng.randrange(4), rng.randrange(4)
    money = lambda x: fmt_money(x, lang, d["cur"], ms)  # noqa: E731
    day = lambda x: fmt_date(x, lang, ds, us=d["cur"] == "USD")  # noqa: E731
    doc = new_doc(f"{v['title']} {d['number']}", d["vendor"])
    cv = Canvas(doc, size)
    W, H = cv.w, cv.h
    L, R = 50.0, W - 50.0
    fs = rng.choice([8.5, 9.0, 9.5, 10.0])
    head = rng.randrange(3)                   # vendor block: left, right, centre
    vx, va = {0: (L, "left"), 1: (R, "right"), 2: (W / 2, "center")}[head]
    cv.text(vx, 60, d["vendor"], bold, rng.choice([13, 15, 18]), align=va)
    cv.lines(vx, 78, d["vaddr"], font, fs - 0.5, fs + 3, align=va)
    with_due = rng.random() < 0.7
    meta = [(v["number"], d["number"]), (v["date"], day(d["issued"]))]
    if with_due:
        meta.append((v["due"], day(d["due"])))
    if rng.random() < 0.5:
        meta.insert(rng.randrange(len(meta) + 1), (v["order"], f"{rng.randint(1000, 9999)}"))
    if rng.random() < 0.5:
        meta.append((v["delivery"], day(d["delivery"])))
    if rng.random() < 0.4:
        meta.append((v["customer_no"], f"{rng.randint(10000, 99999)}"))
    title_y = 150
    cv.text(L if head != 0 else R, title_y, v["title"], bold, rng.choice([14, 18, 22]),
            align="left" if head else "right")
    y = title_y + 30
    style = rng.randrange(3)                  # meta: "Label: value" right block, label above value row, 2-column
    if style == 1:
        keep = {v["number"], v["date"], v["due"]}  # a row of labels over values has room for four
        while len(meta) > 4:
            meta.remove(next(m for m in reversed(meta) if m[0] not in keep))
        step = (R - L) / len(meta)
        for i, (lab, val) in enumerate(meta):
            cv.text(L + i * step, y, lab, bold, fs - 1)
            cv.text(L + i * step, y + fs + 4, val, font, fs)
        y += 2 * fs + 24
        cx, y_meta_end = L, y
    else:
        mx = W / 2 + 40 if style == 0 else L
        colon = rng.choice([":", "", ":"])
        for i, (lab, val) in enumerate(meta):
            cv.text(mx, y + i * (fs + 5), lab + colon, bold if rng.random() < 0.5 else font, fs)
            cv.text(mx + 120, y + i * (fs + 5), val, font, fs)
        cx, y_meta_end = (L if style == 0 else W / 2 + 40), y + len(meta) * (fs + 5)
    cv.text(cx, y, v["bill_to"] + rng.choice([":", ""]), bold, fs)
    cv.lines(cx, y + fs + 5, [d["customer"]] + d["caddr"], font, fs, fs + 4)
    y = max(y + 4 * (fs + 4) + 10, y_meta_end + 10) + 20
    shape = rng.randrange(3)  # columns: desc qty unit amount | pos desc qty unit amount | desc amount-ish
    cols = [("#", 0.06)] if shape == 1 else []
    cols += [(v["desc"], 0.46), (v["qty"], 0.12), (v["unit"], 0.18), (v["amount"], 0.18)]
    total_w = sum(w for _, w in cols)
    xs, x = [], L
    for _, w in cols:
        xs.append((x, x + (R - L) * w / total_w))
        x = xs[-1][1]
    grid = rng.random() < 0.4
    for (x0, x1), (lab, _) in zip(xs, cols):
        right = lab not in (v["desc"], "#")
        cv.text(x1 - 4 if right else x0 + 4, y, lab, bold, fs - 0.5, align="right" if right else "left")
    cv.hline(L, R, y + 5)
    y += fs + 10
    for n, it in enumerate(d["items"], 1):
        cells = ([str(n)] if shape == 1 else []) + [it["description"], str(int(it["quantity"])),
                                                     money(it["unit_price"]), money(it["amount"])]
        for (x0, x1), (lab, _), cell in zip(xs, cols, cells):
            right = lab not in (v["desc"], "#")
            cv.text(x1 - 4 if right else x0 + 4, y, cell, font, fs, align="right" if right else "left")
        if grid:
            cv.hline(L, R, y + 5)
        y += fs + 8
    cv.hline(L, R, y - 4)
    y += 12
    rows = [(v["subtotal"], money(d["subtotal"] - sum(x for _, x in d["extra"]))) if d["extra"] else None]
    rows = [r for r in rows if r] + [(v[k], money(x)) for k, x in d["extra"]]
    if d["extra"]:
        rows.append((v["subtotal"], money(d["subtotal"])))
    elif rng.random() < 0.9:
        rows.append((v["subtotal"], money(d["subtotal"])))
    rate = fmt_num(d["rate"], lang).rstrip("0").rstrip(",.")
    rows.append((v["tax"].format(r=rate), money(d["tax"])))
    rows.append((v["total"] + rng.choice(["", f" {d['cur']}", ":"]), money(d["total"])))
    if d["paid"] is not None:
        rows.append((v["paid"], money(-d["paid"])))
        rows.append((v["balance"], money(d["total"] - d["paid"])))
    if rng.random() < 0.2 and len(rows) <= 5:     # totals as a row: labels over their values
        step = (R - L) / len(rows)
        for i, (lab, val) in enumerate(rows):
            cv.text(L + (i + 1) * step - 4, y, lab, bold, fs - 1, align="right")
            cv.text(L + (i + 1) * step - 4, y + fs + 5, val, font, fs, align="right")
        y += 2 * fs + 12
    else:
        tx = rng.choice([W / 2, W / 2 + 40, L + 200])
        for lab, val in rows:
            b = lab.startswith(v["total"])
            cv.text(tx, y, lab, bold if b else font, fs)
            cv.text(R - 4, y, val, bold if b else font, fs, align="right")
            y += fs + 7
    y += 20
    cv.text(L, y, v["terms"].format(d=(d["due"] - d["issued"]).days), font, fs - 1)
    cv.text(L, y + fs + 4, v["thanks"], font, fs - 1)
    iban = f"DE{rng.randint(10, 99)} 5001 0517 {rng.randint(1000, 9999)} 0000 00"
    foot = f"{d['vendor']} · {', '.join(d['vaddr'])} · IBAN {iban}"
    cv.text(W / 2, H - 40, foot, font, 7, align="center")
    save_pdf(doc, path)
    return invoice_truth(d, with_due)


# ---------------------------------------------------------------------------------------------------------- receipts
def draw_receipt(rng: random.Random, lang: str, path: pathlib.Path, quality: str) -> dict:
    """A till receipt rendered as a scan/photo image; returns its truth fields."""
    v = {k: rng.choice(opts) for k, opts in RECEIPT[lang].items()}
    rng.choice(["MYR", "GBP"])  # drawn and unused: each seed's documents stay as they were
    name = company(rng, lang).upper() if rng.random() < 0.6 else f"{rng.choice(NAME_A)} {rng.choice(NAME_B)}".upper()
    addr = address(rng, lang)
    when = date(2017, 1, 1) + timedelta(days=rng.randint(0, 2000))
    items = [(rng.choice(SHOP_ITEMS), q2(Decimal(rng.randint(50, 3000)) / 100)) for _ in range(rng.randint(2, 7))]
    total = sum(p for _, p in items)
    rate = Decimal(rng.choice([6, 7, 10, 19, 20, 21, 22]))
    tax = q2(total * rate / (100 + rate))
    rounding = Decimal(0)
    if lang == "en" and rng.random() < 0.4:
        rounding = q2((total * 20).quantize(Decimal(1), rounding=ROUND_HALF_UP) / 20 - total)
    paid_total = total + rounding
    cash = q2(Decimal(int(paid_total / 10) * 10 + 10 * rng.randint(1, 5)))
    lines: list[tuple[str, str, str]] = []  # (left, right, style) style: c=centre, b=bold-centre, l=left/right
    if rng.random() < 0.35:
        lines.append((rng.choice(SLOGANS), "", "c"))
    lines.append((name, "", "b"))
    if rng.random() < 0.3:
        lines.append((rng.choice(SLOGANS), "", "c"))
    lines += [(a, "", "c") for a in addr]
    lines.append((f"TEL: 0{rng.randint(1, 9)}-555 {rng.randint(1000, 9999)}", "", "c"))
    if rng.random() < 0.5:
        lines.append((f"{'GST REG' if lang == 'en' else 'VAT'} NO: {rng.randint(10**9, 10**10 - 1)}", "", "c"))
    if v["title"]:
        lines.append((v["title"], "", "c"))
    lines.append(("-" * 34, "", "c"))
    t = f"{rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}"
    lines.append((f"{v['date']}{fmt_date(when, lang, 0)} {t}", f"#{rng.randint(1000, 9999)}", "l"))
    lines.append((v["cashier"].format(n=rng.choice(PEOPLE)), "", "l"))
    lines.append(("-" * 34, "", "c"))
    for desc, p in items:
        lines.append((desc, fmt_num(p, lang), "l"))
    lines.append(("-" * 34, "", "c"))
    if rng.random() < 0.5:
        lines.append((v["subtotal"], fmt_num(total - tax if lang != "en" else total, lang), "l"))
    lines.append((v["tax"], fmt_num(tax, lang), "l"))
    if rounding:
        lines.append((v["rounding"], fmt_num(rounding, lang), "l"))
    lines.append((v["total"], fmt_num(paid_total, lang), "L"))
    lines.append((v["cash"], fmt_num(cash, lang), "l"))
    lines.append((v["change"], fmt_num(cash - paid_total, lang), "l"))
    lines.append((v["bye"], "", "c"))
    width = 230.0
    doc = new_doc("Receipt", name)
    cv = Canvas(doc, (width, 60 + 13 * len(lines)))
    y = 30.0
    font, bold = ("mono", "monob") if rng.random() < 0.7 else ("sans", "sansb")
    for left, right, st in lines:
        if st in "cb":
            cv.text(width / 2, y, left, bold if st == "b" else font, 10.5 if st == "b" else 8, align="center")
        else:
            cv.text(12, y, left, bold if st == "L" else font, 8.5 if st == "L" else 8)
            cv.text(width - 12, y, right, bold if st == "L" else font, 8.5 if st == "L" else 8, align="right")
        y += 13
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    img = degrade(render_grey(doc, 0, 200 if quality != "fax" else 150), nprng, quality, rng)
    doc.close()
    img.save(path, quality=80) if path.suffix == ".jpg" else img.save(path)
    return {"merchant_name": name, "merchant_address": ", ".join(addr), "date": when.isoformat(),
            "total": float(paid_total)}


def degrade(img: Image.Image, nprng: np.random.Generator, quality: str, rng: random.Random) -> Image.Image:
    """clean | scan (blur, noise, rotation) | fax (binarised, coarse, streaks)."""
    if quality == "clean":
        return img
    if quality == "scan":
        return scanify(img, nprng, angle=rng.uniform(-2.0, 2.0), blur=rng.uniform(0.3, 1.0),
                       contrast=rng.uniform(0.7, 0.95), brightness=rng.uniform(0, 25), noise=rng.uniform(3, 10),
                       specks=rng.randint(0, 20), whiten=None)
    img = img.rotate(rng.uniform(-1.2, 1.2), resample=Image.BILINEAR, expand=True, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    a = np.asarray(img, dtype=np.float32) + nprng.normal(0, 14, (img.height, img.width))
    a = np.where(a < 170, 0, 255).astype(np.uint8)                     # 1-bit fax
    rows = nprng.random(a.shape[0]) < 0.01                              # a few dropped scan lines
    a[rows] = 255
    return Image.fromarray(a, "L")


# ---------------------------------------------------------------------------------------------------------- driver
def write_split(out: pathlib.Path, split: str, per_kind: int,
                kinds: tuple[str, ...] = ("invoices", "scans", "receipts")) -> dict[str, int]:
    base = SEEDS[split]
    folders = {k: out / split / k for k in kinds}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[dict]] = {k: [] for k in folders}
    for i in range(per_kind):
        rng = random.Random(base + i)
        lang = LANGS[i % len(LANGS)]
        if "invoices" in folders:
            p = folders["invoices"] / f"inv_{split}_{i:03d}_{lang}.pdf"
            truth["invoices"].append({"file": p.name, "doc_type": "invoice",
                                      "fields": draw_invoice(invoice_data(rng, lang), rng, p)})
        if "receipts" not in folders:
            continue
        rng = random.Random(base + 500 + i)
        p = folders["receipts"] / f"rcpt_{split}_{i:03d}_{lang}.{rng.choice(['jpg', 'png'])}"
        quality = "fax" if i % 10 == 9 else rng.choice(["scan", "scan", "clean"])
        truth["receipts"].append({"file": p.name, "doc_type": "receipt",
                                  "fields": draw_receipt(rng, lang, p, quality)})
    for i in range(max(2, per_kind // 4) if "scans" in folders else 0):  # scanned invoices; the last one at fax quality
        rng = random.Random(base + 800 + i)
        lang = LANGS[(i * 5) % len(LANGS)]
        pdf = folders["scans"] / f"_tmp_{i}.pdf"
        fields = draw_invoice(invoice_data(rng, lang), rng, pdf)
        import pymupdf
        with pymupdf.open(pdf) as doc:
            fax = i == max(2, per_kind // 4) - 1
            img = degrade(render_grey(doc, 0, 120 if fax else 200), np.random.default_rng(base + i),
                          "fax" if fax else "scan", rng)
        pdf.unlink()
        p = folders["scans"] / f"scan_{split}_{i:03d}_{lang}{'_fax' if fax else ''}.png"
        img.save(p)
        truth["scans"].append({"file": p.name, "doc_type": "invoice", "fields": fields})
    for k, rows in truth.items():
        (folders[k] / "truth.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {k: len(v) for k, v in truth.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("corpus"))
    ap.add_argument("--split", choices=["dev", "held", "ci", "both"], default="both")
    ap.add_argument("--kinds", default="invoices,scans,receipts", help="comma-separated subset to write")
    ap.add_argument("--per-kind", type=int, default=30, help="invoices and receipts per split (scans: a quarter)")
    args = ap.parse_args(argv)
    for split in (["dev", "held"] if args.split == "both" else [args.split]):
        counts = write_split(args.out, split, args.per_kind, tuple(args.kinds.split(",")))
        print(f"{split}: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" in {args.out / split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
