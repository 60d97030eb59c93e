"""Reading exported mail: mbox, Maildir, a folder of .eml files, one .eml file."""

from __future__ import annotations

import mailbox
import os
import re
from pathlib import Path

import pytest

from connectors.email.mailbox_files import (
    ExportedMail,
    count_messages,
    detect_format,
    iter_messages,
)

ONE = b"From: ann@example.org\nSubject: one\nMessage-ID: <1@example.org>\n\nHello\n"
TWO = (
    b"From: bob@example.org\nSubject: two\n\n"
    b"From the start, a body line that looks like a separator.\n"
    b">From a line that was quoted already.\n"
    b"Bye\n"
)
THREE = b"From: cid@example.org\nSubject: three\n\n\xff\xfe not UTF-8 at all\n"


def mboxrd(*messages: bytes) -> bytes:
    """An mboxrd file as mail servers write it: ">" added to every ^>*From line."""
    out = b""
    for message in messages:
        quoted = b"\n".join(
            b">" + line if line.lstrip(b">").startswith(b"From ") else line
            for line in message.split(b"\n")
        )
        out += b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n" + quoted + b"\n"
    return out


def read_all(path: Path) -> list[ExportedMail]:
    return list(iter_messages(path))


def test_an_mbox_yields_each_message_unquoted_in_order(tmp_path: Path) -> None:
    path = tmp_path / "export.mbox"
    path.write_bytes(mboxrd(ONE, TWO, THREE))

    assert detect_format(path) == "mbox"
    assert count_messages(path) == 3
    mails = read_all(path)
    assert [mail.key for mail in mails] == ["mbox #1", "mbox #2", "mbox #3"]
    assert [mail.data for mail in mails] == [ONE, TWO, THREE]
    assert all(mail.error is None for mail in mails)


def test_an_mbox_written_by_the_standard_library_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "python.mbox"
    box = mailbox.mbox(path)
    box.add(ONE)
    box.add(THREE)
    box.close()
    assert [mail.data for mail in read_all(path)] == [ONE, THREE]


def test_an_apple_mail_export_is_an_mbox(tmp_path: Path) -> None:
    bundle = tmp_path / "Inbox.mbox"
    bundle.mkdir()
    (bundle / "mbox").write_bytes(mboxrd(ONE, TWO))
    (bundle / "table_of_contents").write_bytes(b"\x00\x01binary")
    assert detect_format(bundle) == "mbox"
    assert count_messages(bundle) == 2
    assert [mail.data for mail in read_all(bundle)] == [ONE, TWO]


def test_a_maildir_yields_new_and_cur_in_delivery_order(tmp_path: Path) -> None:
    for part in ("new", "cur", "tmp"):
        (tmp_path / part).mkdir()
    (tmp_path / "cur" / "1700000001.M1P1.host:2,S").write_bytes(ONE)
    (tmp_path / "new" / "1700000002.M2P1.host").write_bytes(TWO)
    (tmp_path / "cur" / "1700000003.M3P1.host:2,RS").write_bytes(THREE)
    (tmp_path / "tmp" / "1700000004.M4P1.host").write_bytes(b"half delivered")
    (tmp_path / ".Sent" / "cur").mkdir(parents=True)
    (tmp_path / ".Sent" / "cur" / "1700000005.M5P1.host:2,S").write_bytes(b"ours")

    assert detect_format(tmp_path) == "maildir"
    assert count_messages(tmp_path) == 3
    mails = read_all(tmp_path)
    assert [mail.key for mail in mails] == [
        "cur/1700000001.M1P1.host:2,S",
        "new/1700000002.M2P1.host",
        "cur/1700000003.M3P1.host:2,RS",
    ]
    assert [mail.data for mail in mails] == [ONE, TWO, THREE]


def test_a_maildir_made_by_the_standard_library_reads_back(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "md")
    box.add(ONE)
    seen = mailbox.MaildirMessage(TWO)
    seen.set_subdir("cur")
    seen.set_flags("S")
    box.add(seen)
    box.close()
    mails = read_all(tmp_path / "md")
    assert sorted(mail.data for mail in mails) == sorted([ONE, TWO])
    assert sorted(mail.key.split("/")[0] for mail in mails) == ["cur", "new"]


def test_a_folder_of_eml_files_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b.eml").write_bytes(TWO)
    (tmp_path / "a.eml").write_bytes(ONE)
    (tmp_path / "2023").mkdir()
    (tmp_path / "2023" / "c.eml").write_bytes(THREE)
    (tmp_path / "old.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 Outlook")
    (tmp_path / ".DS_Store").write_bytes(b"Bud1")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.eml").write_bytes(ONE)

    assert detect_format(tmp_path) == "eml-folder"
    assert count_messages(tmp_path) == 4
    mails = read_all(tmp_path)
    assert [mail.key for mail in mails] == ["2023/c.eml", "a.eml", "b.eml", "old.msg"]
    # The .msg is handed over as it is: the parser refuses it with a reason.
    assert [mail.data for mail in mails][:3] == [THREE, ONE, TWO]
    assert mails[3].data.startswith(b"\xd0\xcf\x11\xe0")


def test_one_eml_file(tmp_path: Path) -> None:
    path = tmp_path / "x.eml"
    path.write_bytes(ONE)
    assert detect_format(path) == "eml"
    assert count_messages(path) == 1
    assert read_all(path) == [ExportedMail("x.eml", ONE)]


def test_an_unreadable_message_is_reported_and_the_others_still_come(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(ONE)
    os.symlink(tmp_path / "gone.eml", tmp_path / "b.eml")  # a broken link: reading fails
    (tmp_path / "c.eml").write_bytes(b"x" * 500)
    (tmp_path / "d.eml").write_bytes(TWO)

    mails = list(iter_messages(tmp_path, max_bytes=200))
    assert [mail.key for mail in mails] == ["a.eml", "b.eml", "c.eml", "d.eml"]
    assert [mail.data for mail in mails] == [ONE, b"", b"", TWO]
    assert mails[1].error is not None
    assert mails[1].error.startswith("cannot read it: ")
    assert mails[2].error == "larger than 200 bytes (500 bytes)"
    assert mails[0].error is None
    assert mails[3].error is None


def test_an_oversized_mbox_message_is_reported_and_the_others_still_come(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.mbox"
    path.write_bytes(mboxrd(ONE, TWO + b"x" * 500, THREE))
    mails = list(iter_messages(path, max_bytes=200))
    assert [mail.data for mail in mails] == [ONE, b"", THREE]
    assert mails[1].error == "larger than 200 bytes"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: _file(p / "empty.eml", b""), "is empty"),
        (lambda p: _file(p / "x.mbox", b"Subject: hi\n\n"), "not an mbox file"),
        (lambda p: _dir(p / "nothing"), "not a Maildir (no cur/ and new/ inside)"),
        (lambda p: _file(p / "hidden" / ".DS_Store", b"x").parent, "without mail files"),
    ],
)
def test_what_is_not_an_export_gets_a_clear_reason(
    tmp_path: Path, make: object, reason: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ValueError, match=re.escape(reason)):
        detect_format(path)
    with pytest.raises(ValueError, match=re.escape(reason)):
        list(iter_messages(path))


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path
