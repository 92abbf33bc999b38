"""Evidence files: judged by their bytes, stored by their digest, limited, served only to those who may
see the directive, always as an attachment with a safe name."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from engine.directives import evidence_store
from engine.storage import file_store
from tests.test_api_support import PDF, PNG, World, assert_problem, office_file, open_world

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
TEXT = "تقرير المعاينة: تم التجهيز\nReport: done\n".encode()


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch, evidence_max_bytes=200_000, evidence_max_files=3,
                    max_request_bytes=1_000_000) as built:
        yield built


def _nothing_stored(world: World) -> bool:
    with world.db.reading() as session:
        return not file_store.database_digests(session) and not (Path(world.settings.home) / "evidence").exists()


def _step(world: World) -> tuple[int, int]:
    directive = world.create_directive()
    return directive["id"], world.open_step(directive["id"], "acknowledge")


def _upload(world: World, step: int, *files: tuple[str, bytes, str], who: str = "housing.user"):
    return world.call(who, "POST", f"/api/v1/tasks/{step}/evidence",
                      files=[("files", file) for file in files])


@pytest.mark.parametrize(("name", "content", "claimed", "kind", "shown_as"), [
    ("report.pdf", PDF, "application/pdf", "application/pdf", "report.pdf"),
    ("photo.png", PNG, "image/png", "image/png", "photo.png"),
    ("photo.jpeg", JPEG, "image/jpeg", "image/jpeg", "photo.jpeg"),
    ("sheet.xlsx", office_file("xlsx"), "application/octet-stream",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "sheet.xlsx"),
    ("letter.docx", office_file("docx"), "application/msword",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "letter.docx"),
    ("notes.txt", TEXT, "text/plain", "text/plain; charset=utf-8", "notes.txt"),
    ("invoice.png", PDF, "image/png", "application/pdf", "invoice.png.pdf"),  # the bytes decide, not the name
    ("run.exe", TEXT, "application/x-msdownload", "text/plain; charset=utf-8", "run.exe.txt"),
])
def test_accepted_kinds_are_judged_by_their_bytes(world: World, name, content, claimed, kind, shown_as):
    directive_id, step = _step(world)
    response = _upload(world, step, (name, content, claimed))
    assert response.status_code == 201, response.text
    [row] = response.json()
    assert row["content_type"] == kind and row["filename"] == shown_as and row["size"] == len(content)
    assert row["sha256"] == hashlib.sha256(content).hexdigest() and row["directive_id"] == directive_id
    with world.db.reading() as session:  # in the file store's default backend, the database
        assert file_store.read_bytes(session, Path(world.settings.home), row["sha256"]) == content
        assert file_store.locate(session, Path(world.settings.home), row["sha256"]).backend == file_store.DATABASE
    download = world.call("housing.user", "GET", row["download_url"])
    assert download.status_code == 200 and download.content == content
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"].startswith(kind.split(";")[0])
    assert download.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("name", "content"), [
    ("page.html", b"<html><script>alert(1)</script></html>\x00"),
    ("program.exe", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64),
    ("image.gif", b"GIF89a" + b"\x00" * 32),
    ("archive.zip", b"PK\x03\x04" + b"\x00" * 40),
    ("plain.zip", None),
    ("macro.xlsm", None),
    ("binary.bin", bytes(range(256))),
])
def test_other_kinds_are_415(world: World, name, content):
    if name == "plain.zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("readme.txt", "hello")
        content = buffer.getvalue()
    elif name == "macro.xlsm":
        content = office_file("xlsx", extra={"xl/vbaProject.bin": b"\x00" * 100})
    _, step = _step(world)
    body = assert_problem(_upload(world, step, (name, content, "application/pdf")), 415, "unsupported-media-type")
    assert body["code"] == "unsupported-evidence-type"


def test_a_zip_bomb_is_refused_without_unpacking_it(world: World):
    _, step = _step(world)
    bomb = office_file("xlsx", extra={"xl/worksheets/sheet1.xml": b"\x00" * 120_000_000})
    assert len(bomb) < 200_000  # small on the wire
    body = assert_problem(_upload(world, step, ("big.xlsx", bomb, "application/octet-stream")), 415)
    assert "zip bomb" in body["detail"]
    ratio_only = office_file("docx", extra={"word/media/a.bin": b"\x00" * 5_000_000})  # under the total, 1000:1
    body = assert_problem(_upload(world, step, ("dense.docx", ratio_only, "application/octet-stream")), 415)
    assert "zip bomb" in body["detail"]
    assert _nothing_stored(world)


def test_size_and_count_limits(world: World):
    _, step = _step(world)
    too_big = PDF + b"0" * 200_000
    assert_problem(_upload(world, step, ("big.pdf", too_big, "application/pdf")), 413, "payload-too-large")
    four = [(f"f{i}.txt", TEXT, "text/plain") for i in range(4)]
    body = assert_problem(_upload(world, step, *four), 422, "invalid-input")
    assert "at most 3 files" in body["detail"]
    assert_problem(_upload(world, step, ("empty.txt", b"", "text/plain")), 422)
    huge_request = [(f"f{i}.pdf", PDF + b"0" * 190_000, "application/pdf") for i in range(6)]
    assert_problem(_upload(world, step, *huge_request), 413)
    assert _nothing_stored(world)


@pytest.mark.parametrize(("given", "shown"), [
    ("../../../../etc/passwd.pdf", "passwd.pdf"),
    ("..\\..\\windows\\system32\\config.pdf", "config.pdf"),
    ("/absolute/path/report.pdf", "report.pdf"),
    ("..", "evidence.pdf"),
    (". .", "evidence.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe.pdf"),
    ("تقرير المعاينة.pdf", "تقرير المعاينة.pdf"),
    ("a" * 300 + ".pdf", "a" * 190 + ".pdf"),
])
def test_file_names_never_become_paths(world: World, given: str, shown: str):
    _, step = _step(world)
    response = _upload(world, step, (given, PDF, "application/pdf"))
    assert response.status_code == 201, response.text
    row = response.json()[0]
    assert row["filename"] == shown
    home = Path(world.settings.home)
    assert not (home / "evidence").exists()  # nothing on disk: the name never became a path
    with world.db.reading() as session:
        assert file_store.database_digests(session) == [row["sha256"]]
    disposition = world.call("admin", "GET", row["download_url"]).headers["content-disposition"]
    ascii_part = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in ascii_part and "\\" not in ascii_part and "\u202e" not in disposition
    assert "filename*=UTF-8''" in disposition


def test_control_characters_in_a_raw_file_name_are_dropped(world: World):
    _, step = _step(world)
    boundary = "tansiqboundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="new\tline\x07\u202e.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n").encode() + PDF + f"\r\n--{boundary}--\r\n".encode()
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/evidence", content=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 201, response.text
    assert response.json()[0]["filename"] == "newline.pdf"


def test_downloads_are_for_those_who_may_see_the_directive(world: World):
    _, step = _step(world)
    evidence = _upload(world, step, ("a.pdf", PDF, "application/pdf")).json()[0]["download_url"]
    for who, status in (("housing.user", 200), ("viewer", 200), ("officer", 200), ("admin", 200),
                        ("transport.user", 404)):
        assert world.call(who, "GET", evidence).status_code == status, who
    assert_problem(world.client.get(evidence), 401)
    assert_problem(world.call("housing.user", "GET", "/api/v1/evidence/987654"), 404)
    assert_problem(_upload(world, step, ("a.pdf", PDF, "application/pdf"), who="transport.user"), 404)
    assert_problem(_upload(world, step, ("a.pdf", PDF, "application/pdf"), who="officer"), 403)


def test_evidence_of_another_directive_cannot_be_named(world: World):
    _, other_step = _step(world)
    foreign = _upload(world, other_step, ("a.pdf", PDF, "application/pdf")).json()[0]["id"]
    directive_id, step = _step(world)
    world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {}})
    execute = world.open_step(directive_id, "execute")
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{execute}/complete",
                          json={"data": {"summary": "done", "evidence": [foreign]}})
    body = assert_problem(response, 422)
    assert str(foreign) in body["detail"]


def test_identical_content_is_stored_once(world: World):
    _, step = _step(world)
    first = _upload(world, step, ("a.pdf", PDF, "application/pdf")).json()[0]
    second = _upload(world, step, ("b.pdf", PDF, "application/pdf")).json()[0]
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    with world.db.reading() as session:
        assert file_store.database_digests(session) == [first["sha256"]]  # one blob


def test_the_sniffer_directly():
    assert evidence_store.sniff(PDF) == "pdf" and evidence_store.sniff(TEXT) == "txt"
    assert evidence_store.sniff(b"\x00\x01binary") is None
    assert evidence_store.safe_filename("a/b\\c\u202e.pdf") == "c.pdf"
    with pytest.raises(evidence_store.UnsupportedEvidence):
        evidence_store.sniff(b"PK\x03\x04garbage")
