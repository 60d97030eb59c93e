"""Reading exported mail for history import: an mbox file, a Maildir, a folder of .eml files.

Messages are streamed one at a time (an mbox is indexed by the standard library's
`mailbox.mbox`, which keeps offsets, not contents). What a message *is* is the parser's
business: every file found is handed over, so a stray Outlook .msg in a folder of .eml
files is refused by the parser with its reason and shows in the import's summary
instead of vanishing.

A message that cannot be read (permissions, I/O errors, larger than `max_bytes`) does
not stop the others: it is yielded with empty `data` and the reason in `error`, and
logged.

Decisions:
- mbox "From " quoting is undone as mboxrd readers do: one ">" is removed from lines
  matching ^>+From . An mboxo file's body line that really began with ">From " loses
  its ">" (mboxo cannot tell the two apart).
- Keys are for people: "mbox #1" (1-based, in file order), "cur/1700000000.M1P2.host:2,S"
  for a Maildir, the relative path for a folder.
- A Maildir is read from its new/ and cur/ (tmp/ holds unfinished deliveries); Maildir++
  subfolders (".Sent", ".Archive") are not descended into: sent mail is not a
  customer's message.
- A folder of .eml files is read recursively in sorted path order; hidden files
  (".DS_Store") are skipped, every other file is yielded.
- A directory holding an "mbox" file and no messages otherwise (Apple Mail's export,
  "Inbox.mbox/mbox") is an mbox.
"""

from __future__ import annotations

import logging
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Format = Literal["mbox", "maildir", "eml-folder", "eml"]

MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_MBOXRD_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)
_MAILDIR_PARTS = ("new", "cur")


@dataclass(frozen=True, slots=True)
class ExportedMail:
    """One message read from an export, with where it came from."""

    key: str  # for the summary: "mbox #17", "cur/1234.host:2,S", "2023/x.eml"
    data: bytes  # the raw RFC 822 bytes; empty when the message could not be read
    error: str | None = None  # why `data` is empty, when it could not be read


def detect_format(path: Path) -> Format:
    """What `path` holds; raises ValueError with a clear reason when it is none of them
    (OSError when it cannot be read at all)."""
    if path.is_dir():
        if all((path / part).is_dir() for part in _MAILDIR_PARTS):
            return "maildir"
        if _apple_mbox(path) is not None:
            return "mbox"
        if next(_folder_files(path), None) is None:
            raise ValueError(
                f"{path} is a directory without mail files, and not a Maildir "
                "(no cur/ and new/ inside)"
            )
        return "eml-folder"
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is neither a file nor a directory")
    with path.open("rb") as file:
        head = file.read(5)
    if not head:
        raise ValueError(f"{path} is empty")
    if head == b"From ":
        return "mbox"
    if path.suffix.lower() in (".mbox", ".mbx"):
        raise ValueError(f"{path} is not an mbox file: it does not start with a 'From ' line")
    return "eml"


def count_messages(path: Path) -> int:
    """How many messages `path` holds, for a progress bar (an mbox is scanned once)."""
    kind = detect_format(path)
    if kind == "mbox":
        box = _open_mbox(_mbox_file(path))
        try:
            return len(box)
        finally:
            box.close()
    if kind == "maildir":
        return sum(1 for _ in _maildir_files(path))
    if kind == "eml-folder":
        return sum(1 for _ in _folder_files(path))
    return 1


def iter_messages(path: Path, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[ExportedMail]:
    """Every message under `path`, one at a time, in a stable order; raises ValueError
    (as detect_format) when `path` is not an export."""
    kind = detect_format(path)
    if kind == "mbox":
        yield from _mbox_messages(_mbox_file(path), max_bytes)
    elif kind == "maildir":
        yield from _files(path, _maildir_files(path), max_bytes)
    elif kind == "eml-folder":
        yield from _files(path, _folder_files(path), max_bytes)
    else:
        yield _read_file(path, path.name, max_bytes)


def _mbox_messages(path: Path, max_bytes: int) -> Iterator[ExportedMail]:
    box = _open_mbox(path)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            label = f"mbox #{number}"
            try:
                with box.get_file(key) as file:
                    data = file.read(max_bytes + 1)
            except OSError as err:
                yield _unreadable(label, f"cannot read it: {err}")
                continue
            if len(data) > max_bytes:
                yield _unreadable(label, f"larger than {max_bytes} bytes")
                continue
            yield ExportedMail(label, _MBOXRD_QUOTED.sub(rb"\1", data))
    finally:
        box.close()


def _open_mbox(path: Path) -> mailbox.mbox:
    # create=False: a missing file is an error, never a new empty mailbox.
    return mailbox.mbox(path, create=False)


def _mbox_file(path: Path) -> Path:
    if path.is_dir():
        return _apple_mbox(path) or path
    return path


def _apple_mbox(path: Path) -> Path | None:
    inner = path / "mbox"
    if not inner.is_file():
        return None
    with inner.open("rb") as file:
        return inner if file.read(5) == b"From " else None


def _maildir_files(path: Path) -> Iterator[Path | _Unlisted]:
    # Walked directly rather than through mailbox.Maildir, which hides each message's
    # file name: the key a person needs to find it.
    # Both parts in one order by unique name, which starts with the delivery time.
    listed = [item for part in _MAILDIR_PARTS for item in _listing(path / part, recurse=False)]
    yield from sorted(listed, key=lambda item: item.name if isinstance(item, Path) else "")


def _folder_files(path: Path) -> Iterator[Path | _Unlisted]:
    yield from _listing(path, recurse=True)


@dataclass(frozen=True, slots=True)
class _Unlisted:
    """A directory that could not be listed: reported, never silently left out."""

    folder: Path
    reason: str


def _listing(folder: Path, *, recurse: bool) -> Iterator[Path | _Unlisted]:
    """The non-hidden files under `folder`, in sorted order."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as err:
        yield _Unlisted(folder, f"cannot list it: {err.strerror or err}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if recurse:
                yield from _listing(Path(entry.path), recurse=True)
        elif entry.is_file() or entry.is_symlink():
            # A broken link is yielded too: reading it fails, and the summary says so.
            # (Sockets and FIFOs are not mail; reading a FIFO would block.)
            yield Path(entry.path)


def _files(
    path: Path, listing: Iterator[Path | _Unlisted], max_bytes: int
) -> Iterator[ExportedMail]:
    for item in listing:
        if isinstance(item, _Unlisted):
            yield _unreadable(item.folder.relative_to(path).as_posix() + "/", item.reason)
        else:
            yield _read_file(item, item.relative_to(path).as_posix(), max_bytes)


def _read_file(file: Path, key: str, max_bytes: int) -> ExportedMail:
    try:
        size = file.stat().st_size
        if size > max_bytes:
            return _unreadable(key, f"larger than {max_bytes} bytes ({size} bytes)")
        return ExportedMail(key, file.read_bytes())
    except OSError as err:
        return _unreadable(key, f"cannot read it: {err.strerror or err}")


def _unreadable(key: str, reason: str) -> ExportedMail:
    logger.warning("exported message %s skipped: %s", key, reason)
    return ExportedMail(key, b"", reason)
