from pathlib import Path

from conftest import make_pdf, make_scan

from docpipe.discover import discover, sniff


def test_type_comes_from_bytes_not_name(tmp_path: Path) -> None:
    png = make_scan(tmp_path / "photo.jpg", "hello", fmt="PNG")
    (src,) = list(discover([png]))
    assert src.kind == "image" and src.mime == "image/png"


def test_folder_walk_reports_broken_documents_but_ignores_other_files(tmp_path: Path) -> None:
    make_pdf(tmp_path / "a.pdf", ["one"])
    (tmp_path / "sub").mkdir()
    make_pdf(tmp_path / "sub" / "b.pdf", ["two"])
    (tmp_path / "notes.txt").write_text("not a document")
    (tmp_path / "truth.jsonl").write_text("{}\n")
    (tmp_path / "broken.pdf").write_text("oops")
    (tmp_path / ".hidden.pdf").write_bytes(b"%PDF-1.4")
    found = {Path(s.path).name: s.kind for s in discover([tmp_path])}
    assert found == {"a.pdf": "pdf", "b.pdf": "pdf", "broken.pdf": "unsupported"}


def test_same_bytes_same_identity(tmp_path: Path) -> None:
    a = make_pdf(tmp_path / "a.pdf", ["same"])
    b = tmp_path / "copy.pdf"
    b.write_bytes(a.read_bytes())
    s1, s2 = discover([a, b])
    assert s1.sha256 == s2.sha256 and len(s1.sha256) == 64


def test_missing_path_is_reported(tmp_path: Path) -> None:
    (item,) = list(discover([tmp_path / "nope.pdf"]))
    assert item[:2] == (tmp_path / "nope.pdf", "no such file or directory") and item.status == "missing"


def test_sniff_kinds() -> None:
    assert sniff(b"")[0] == "empty"
    assert sniff(b"\n\n%PDF-1.7")[0] == "pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ")[1] == "image/webp"
    assert sniff(b"II*\x00")[1] == "image/tiff"
    assert sniff(b"hello")[0] == "unsupported"
