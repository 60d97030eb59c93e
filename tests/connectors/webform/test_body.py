"""Request bodies of each content type turned into names and values, and their limits."""

from __future__ import annotations

import json

import pytest

from connectors.webform.body import (
    INVALID_UTF8,
    JSON,
    MULTIPART,
    NOT_TEXT,
    URLENCODED,
    parse_body,
)
from connectors.webform.definition import FormDefinition
from connectors.webform.errors import BodyTooLarge, MalformedBody, UnsupportedContentType
from connectors.webform.limits import Limits, body_limit
from connectors.webform.multipart import header_params
from tests.connectors.webform.conftest import (
    BOUNDARY,
    PNG,
    contact_form,
    multipart,
)
from tests.connectors.webform.conftest import (
    MULTIPART as MULTIPART_TYPE,
)


def test_urlencoded_decodes_plus_percent_and_utf8() -> None:
    body = parse_body(URLENCODED, b"name=Ann+Lee&msg=caf%C3%A9%20%26+co&empty=&flag&name=2")
    assert body.media_type == URLENCODED
    assert body.values == (
        ("name", "Ann Lee"),
        ("msg", "café & co"),
        ("empty", ""),
        ("flag", ""),
        ("name", "2"),
    )
    assert body.get_all("name") == ["Ann Lee", "2"]
    assert body.text("msg") == "café & co"
    assert body.text("nothing") is None


def test_urlencoded_charset_parameter() -> None:
    assert parse_body(f"{URLENCODED}; charset=UTF-8", b"a=1").values == (("a", "1"),)
    with pytest.raises(UnsupportedContentType, match="UTF-8"):
        parse_body(f"{URLENCODED}; charset=iso-8859-1", b"a=1")


def test_invalid_utf8_is_the_fields_problem_not_the_requests() -> None:
    body = parse_body(URLENCODED, b"good=ok&bad=%FF%FE&raw=\xc3(")
    assert body.get_all("good") == ["ok"]
    assert body.get_all("bad") == [INVALID_UTF8]
    assert body.get_all("raw") == [INVALID_UTF8]
    assert body.text("bad") is None


def test_multipart_text_fields_and_a_file_keep_exact_bytes() -> None:
    data = PNG + b"\r\n--not-the-boundary\r\n\x00\xff\r\n"
    raw = multipart(
        [("name", "Zoë"), ("message", "line 1\r\nline 2"), ("bad", b"\xff")],
        [("attachment", "photo.png", "image/png", data)],
    )
    body = parse_body(MULTIPART_TYPE, raw)
    assert body.media_type == MULTIPART
    assert body.values == (
        ("name", "Zoë"),
        ("message", "line 1\r\nline 2"),
        ("bad", INVALID_UTF8),
    )
    (upload,) = body.files
    assert (upload.name, upload.filename, upload.content_type) == (
        "attachment",
        "photo.png",
        "image/png",
    )
    assert upload.data == data
    assert body.files_for("attachment") == [upload]


def test_multipart_quoted_boundary_preamble_epilogue_and_empty_file_input() -> None:
    raw = (
        b"preamble to ignore\r\n"
        + multipart([("a", "1")], [("attachment", "", "application/octet-stream", b"")], "b:q?")
        + b"epilogue"
    )
    body = parse_body('multipart/form-data; boundary="b:q?"', raw)
    assert body.values == (("a", "1"),)
    assert body.files == ()  # no file chosen: the browser's empty part means nothing


def test_multipart_utf8_and_rfc5987_filenames_and_windows_paths() -> None:
    raw = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="f1"; filename="C:\\Users\\ann\\résumé.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="f2"; filename="plain.txt"; '
        "filename*=UTF-8''%E2%82%AC.txt\r\n\r\nx\r\n"
        f"--{BOUNDARY}--\r\n"
    ).encode()
    first, second = parse_body(MULTIPART_TYPE, raw).files
    assert first.filename == "C:\\Users\\ann\\résumé.pdf"
    assert second.filename == "€.txt"
    assert second.content_type == ""  # no Content-Type header: nothing claimed


@pytest.mark.parametrize(
    ("content_type", "raw", "message"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--", "boundary"),
        ("multipart/form-data; boundary=" + "x" * 71, b"", "boundary"),
        (MULTIPART_TYPE, multipart([("a", "1")])[:-20], "truncated"),
        (MULTIPART_TYPE, b"no delimiter at all", "truncated"),
        (MULTIPART_TYPE, f"--{BOUNDARY}garbage\r\n\r\nx\r\n--{BOUNDARY}--".encode(), "garbage"),
        (
            MULTIPART_TYPE,
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\nx"
            f"\r\n--{BOUNDARY}--".encode(),
            "never end",
        ),
        (
            MULTIPART_TYPE,
            f"--{BOUNDARY}\r\nno colon here\r\n\r\nx\r\n--{BOUNDARY}--".encode(),
            "malformed header",
        ),
        (JSON, b"{not json", "not valid JSON"),
        (JSON, b"[1, 2]", "must be an object"),
        (JSON, b"\xff\xfe\x00", "not valid JSON"),
        (JSON, b"[" * 100_000, "not valid JSON"),
        (JSON, b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_malformed_bodies(content_type: str, raw: bytes, message: str) -> None:
    with pytest.raises(MalformedBody, match=message) as caught:
        parse_body(content_type, raw)
    assert caught.value.status == 400 and caught.value.code == "malformed"


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/xml", "multipart/mixed"])
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        parse_body(content_type, b"a=1")
    assert caught.value.status == 415


def test_json_values() -> None:
    document = {
        "name": "Ann",
        "consent": True,
        "off": False,
        "count": 3,
        "tags": ["a", 1, True, {"x": 1}],
        "nested": {"a": 1},
        "nothing": None,
        "surrogate": "\ud800",
    }
    body = parse_body(f"{JSON}; charset=utf-8", json.dumps(document).encode())
    assert body.values == (
        ("name", "Ann"),
        ("consent", "true"),
        ("off", "false"),
        ("count", "3"),
        ("tags", "a"),
        ("tags", "1"),
        ("tags", "true"),
        ("tags", NOT_TEXT),
        ("nested", NOT_TEXT),
        ("surrogate", INVALID_UTF8),
    )


def test_limits_body_size() -> None:
    limits = Limits(max_body_bytes=100)
    parse_body(URLENCODED, b"a=" + b"x" * 98, limits)
    with pytest.raises(BodyTooLarge) as caught:
        parse_body(URLENCODED, b"a=" + b"x" * 99, limits)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        (URLENCODED, "&".join(f"f{i}=x" for i in range(6)).encode()),
        (JSON, json.dumps({f"f{i}": "x" for i in range(6)}).encode()),
        (JSON, json.dumps({"f": ["x"] * 6}).encode()),
        (MULTIPART_TYPE, multipart([(f"f{i}", "x") for i in range(6)])),
    ],
)
def test_limits_field_count(content_type: str, raw: bytes) -> None:
    with pytest.raises(BodyTooLarge, match="more than 5 fields"):
        parse_body(content_type, raw, Limits(max_parts=5))


def test_limits_file_count_and_part_headers() -> None:
    files = [("attachment", f"{i}.png", "image/png", PNG) for i in range(3)]
    assert len(parse_body(MULTIPART_TYPE, multipart([], files), Limits(max_files=3)).files) == 3
    with pytest.raises(BodyTooLarge, match="more than 2 files"):
        parse_body(MULTIPART_TYPE, multipart([], files), Limits(max_files=2))
    long_header = multipart([("a" * 10_000, "x")])
    with pytest.raises(MalformedBody, match="headers are too long"):
        parse_body(MULTIPART_TYPE, long_header)


def test_over_long_names_are_skipped() -> None:
    body = parse_body(URLENCODED, b"a=1&" + b"n" * 201 + b"=2", Limits(max_name_chars=200))
    assert body.values == (("a", "1"),)


def test_body_limit_follows_the_definitions_files() -> None:
    limits = Limits(text_body_bytes=1000, max_body_bytes=10_000)
    form = contact_form()  # one file field of at most 1024 bytes
    assert body_limit(form, limits) == 1000 + 1024 + 1024
    without_files = FormDefinition.model_validate(
        {"name": "n", "channel_id": "c", "fields": [{"name": "a", "label": "A"}]}
    )
    assert body_limit(without_files, limits) == 1000
    big = contact_form(
        fields=[{"name": "f", "label": "F", "type": "file", "max_bytes": 10 * 1024 * 1024}]
    )
    assert body_limit(big, limits) == 10_000


def test_header_params() -> None:
    assert header_params('Form-Data; NAME="a;b"; filename=x.txt') == (
        "form-data",
        {"name": "a;b", "filename": "x.txt"},
    )
    assert header_params("") == ("", {})
    assert header_params("text/plain; charset*=latin-1''x") == ("text/plain", {})
