"""Arbitrary bodies and values: the parser and validator raise nothing but SubmissionError."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.webform.body import JSON, MULTIPART, URLENCODED, parse_body
from connectors.webform.clean import clean_text
from connectors.webform.errors import SubmissionError
from connectors.webform.submission import read_submission
from tests.connectors.webform.conftest import BOUNDARY, GOOD_FIELDS, contact_form, multipart

FORM = contact_form()
NAMES = st.sampled_from([name for name, _ in GOOD_FIELDS] + ["attachment", "_token", "other"])
CONTENT_TYPES = st.sampled_from(
    [
        URLENCODED,
        JSON,
        f"{MULTIPART}; boundary={BOUNDARY}",
        f"{MULTIPART}; boundary=x",
        "multipart/form-data",
        "text/plain",
        "",
    ]
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read(content_type: str, body: bytes) -> None:
    try:
        submission = read_submission(FORM, content_type, body, default_region="US")
    except SubmissionError:
        return
    for answer in submission.answers:
        if isinstance(answer.value, str):
            assert "\x00" not in answer.value
            answer.value.encode("utf-8")  # storable as UTF-8


@SETTINGS
@given(content_type=CONTENT_TYPES, body=st.binary(max_size=2000))
def test_arbitrary_bytes(content_type: str, body: bytes) -> None:
    _read(content_type, body)


@SETTINGS
@given(
    content_type=CONTENT_TYPES,
    prefix=st.sampled_from([b"", b"--x\r\n", f"--{BOUNDARY}\r\n".encode(), b"{", b"name="]),
    body=st.binary(max_size=500),
)
def test_arbitrary_bytes_after_plausible_starts(
    content_type: str, prefix: bytes, body: bytes
) -> None:
    _read(content_type, prefix + body)


@SETTINGS
@given(values=st.lists(st.tuples(NAMES, st.text(max_size=300)), max_size=20))
def test_arbitrary_values_urlencoded(values: list[tuple[str, str]]) -> None:
    _read(URLENCODED, urlencode(values, errors="surrogatepass").encode())


@SETTINGS
@given(
    values=st.lists(st.tuples(NAMES, st.binary(max_size=300)), max_size=20),
    files=st.lists(
        st.tuples(
            NAMES,
            st.text(max_size=40).map(lambda s: s.replace('"', "").replace("\r", "")),
            st.sampled_from(["image/png", "application/pdf", "", "text/html", "x/y"]),
            st.binary(max_size=600),
        ),
        max_size=3,
    ),
)
def test_arbitrary_values_multipart(
    values: list[tuple[str, bytes]], files: list[tuple[str, str, str, bytes]]
) -> None:
    clean_files = [(n, f.replace("\n", ""), t, d) for n, f, t, d in files]
    body = multipart([(n, v) for n, v in values], clean_files)
    _read(f"{MULTIPART}; boundary={BOUNDARY}", body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=100),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(document=st.dictionaries(NAMES, JSON_VALUES, max_size=12))
def test_arbitrary_json(document: dict[str, object]) -> None:
    _read(JSON, json.dumps(document).encode())


@SETTINGS
@given(data=st.binary(max_size=3000))
def test_multipart_file_bytes_survive_exactly(data: bytes) -> None:
    body = multipart([("a", "1")], [("attachment", "f.bin", "application/octet-stream", data)])
    parsed = parse_body(f"{MULTIPART}; boundary={BOUNDARY}", body)
    assert parsed.files[0].data == data
    assert parsed.values == (("a", "1"),)


@given(text=st.text())
def test_clean_text_leaves_no_controls(text: str) -> None:
    for multiline in (True, False):
        cleaned = clean_text(text, multiline=multiline)
        assert not any(ord(c) < 0x20 and c not in "\n\t" for c in cleaned)
        assert "\r" not in cleaned
        if not multiline:
            assert "\n" not in cleaned and "\t" not in cleaned
