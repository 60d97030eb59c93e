"""One synchronous IMAP connection (imapclient), with library errors translated once.

Everything here blocks: the receiver runs it in a thread of its own. Errors leave as the
three connector errors, each subclass naming the configuration key it concerns, so the
"test connection" answer can point at the field to fix.
"""

from __future__ import annotations

import functools
import imaplib
import logging
import selectors
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import CapabilityError, LoginError

from connectors.email.config import EmailConfig
from connectors.errors import AuthError, PermanentError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# An IDLE wait returns at once with nothing read when the peer closed the socket
# (imapclient swallows the EOF); this many such wake-ups in a row mean the line is gone.
_EMPTY_WAKEUPS_MEAN_CLOSED = 3
# UIDs per FETCH command, so a command line stays far below servers' limits (8 KB+).
_UIDS_PER_COMMAND = 500


class _IdleClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient whose IDLE check also sees responses already read into its buffer.

    The server may send an EXISTS in the same packet as IDLE's "+ idling": imaplib reads
    both into its buffered reader while reading the continuation, and a poll on the
    socket then never fires for mail that has already arrived. imapclient's idle_check
    asks `_poll_socket` whether to read; answering yes while the buffer holds data makes
    it read that data.
    """

    def _poll_socket(self, sock: Any, timeout: float | None = None) -> Any:
        if _buffered(self):
            return [(sock.fileno(), 1)]
        return super()._poll_socket(sock, timeout)

    def _select_poll_socket(self, sock: Any, timeout: float | None = None) -> Any:
        if _buffered(self):
            return [sock]
        return super()._select_poll_socket(sock, timeout)


def _buffered(client: IMAPClient) -> bool:
    """Whether imaplib's reader holds bytes not yet consumed (never blocks)."""
    reader = getattr(client._imap, "file", None)
    peek = getattr(reader, "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        # peek answers buffered bytes without reading; with an empty buffer it makes one
        # non-blocking read of what the socket already holds.
        return bool(peek(1))
    except OSError:  # nothing to read now (an SSL socket raises SSLWantReadError)
        return False
    finally:
        sock.settimeout(timeout)


class ConnectFailed(TransientError):
    """DNS, refused connection, timeout, or the server went away."""

    field = "imap_host"


class TlsFailed(PermanentError):
    """The TLS handshake failed, or STARTTLS was asked for and is not offered."""

    field = "imap_security"


class CredentialsRefused(AuthError):
    """The server refused the user name or password."""

    field = "imap_password"


class FolderMissing(PermanentError):
    """A configured folder does not exist or cannot be selected."""

    field = "imap_folders"

    def __init__(self, folder: str, detail: str) -> None:
        super().__init__(f"folder {folder!r} does not exist ({detail})")
        self.folder = folder


class ServerRefused(TransientError):
    """The server answered NO or BAD to a command we rely on."""

    field = "imap_host"


@dataclass(frozen=True, slots=True)
class FolderState:
    """What SELECT/EXAMINE said about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int


def _text(err: BaseException) -> str:
    """The server's words from an imaplib error, without the bytes-literal dressing."""
    text = str(err)
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text or type(err).__name__


def _tls_context() -> ssl.SSLContext:
    # Certificates and host names are verified: a mailbox password never goes to an
    # impostor. There is deliberately no "accept any certificate" switch.
    return ssl.create_default_context()


def _translate(action: str, call: Callable[[], T]) -> T:
    """Runs one library call, turning network failures into ConnectFailed and a
    NO/BAD answer into ServerRefused."""
    try:
        return call()
    except ssl.SSLError as err:
        raise ConnectFailed(f"{action}: TLS error: {err}") from err
    except (OSError, imaplib.IMAP4.abort) as err:
        raise ConnectFailed(f"{action}: connection lost: {_text(err)}") from err
    except imaplib.IMAP4.error as err:
        raise ServerRefused(f"{action}: the server refused: {_text(err)}") from err


def open_client(config: EmailConfig, timeout: float) -> IMAPClient:
    """Connects with the configured security mode and logs in.

    Raises ConnectFailed, TlsFailed, CredentialsRefused (or ConnectFailed when the server
    says its authentication is only temporarily unavailable)."""
    host, port = config.imap_host, config.imap_port
    where = f"{host}:{port}"
    timeouts = SocketTimeout(connect=timeout, read=timeout)
    try:
        client = _IdleClient(
            host,
            port=port,
            ssl=config.imap_security == "tls",
            ssl_context=_tls_context() if config.imap_security == "tls" else None,
            timeout=timeouts,
        )
    except ssl.SSLError as err:
        raise TlsFailed(f"TLS failed with {where}: {err}") from err
    except (OSError, imaplib.IMAP4.error) as err:
        raise ConnectFailed(f"cannot connect to {where}: {_text(err)}") from err
    try:
        if config.imap_security == "starttls":
            _starttls(client, where)
        client.login(config.imap_username, config.imap_password)
    except LoginError as err:
        close_quietly(client)
        reason = _text(err)
        # RFC 5530: [UNAVAILABLE] is the server's own trouble, not wrong credentials.
        if "[UNAVAILABLE]" in reason:
            raise ConnectFailed(f"{where} cannot log in right now: {reason}") from err
        raise CredentialsRefused(f"the server refused the user name or password: {reason}") from err
    except (TlsFailed, ConnectFailed):
        close_quietly(client)
        raise
    except ssl.SSLError as err:
        close_quietly(client)
        raise TlsFailed(f"TLS failed with {where}: {err}") from err
    except (OSError, imaplib.IMAP4.error) as err:
        close_quietly(client)
        raise ConnectFailed(f"cannot talk to {where}: {_text(err)}") from err
    return client


def _starttls(client: IMAPClient, where: str) -> None:
    # Never fall back to clear text: that would hand the password to anyone on the path.
    try:
        client.starttls(_tls_context())
    except CapabilityError as err:
        raise TlsFailed(
            f"{where} does not offer STARTTLS; refusing to log in without encryption"
        ) from err
    except ssl.SSLError as err:
        raise TlsFailed(f"TLS failed with {where}: {err}") from err
    except imaplib.IMAP4.abort as err:
        raise ConnectFailed(f"cannot talk to {where}: {_text(err)}") from err
    except imaplib.IMAP4.error as err:
        raise TlsFailed(f"{where} refused STARTTLS: {_text(err)}") from err


def close_quietly(client: IMAPClient) -> None:
    """Logs out, or at least closes the socket; never raises (the line may be dead)."""
    try:
        client.logout()
    except Exception:  # the connection is being dropped anyway
        try:
            client.shutdown()
        except Exception as err:
            log.debug("closing an IMAP connection: %s", err)


class Session:
    """A logged-in IMAP connection and the few commands the receiver needs."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        self.idling = False
        self._empty_wakeups = 0

    def capability(self, name: str) -> bool:
        """Whether the server advertises a capability (IDLE, MOVE, UIDPLUS)."""
        return bool(_translate("CAPABILITY", lambda: self.client.has_capability(name)))

    def select(self, folder: str, *, readonly: bool) -> FolderState:
        """SELECT (or EXAMINE when readonly) a folder; raises FolderMissing on a NO."""
        try:
            answer: dict[bytes, Any] = self.client.select_folder(folder, readonly=readonly)
        except (OSError, imaplib.IMAP4.abort) as err:
            raise ConnectFailed(f"selecting {folder!r}: connection lost: {_text(err)}") from err
        except imaplib.IMAP4.error as err:
            raise FolderMissing(folder, _text(err)) from err
        # The counts just read are the state reported; only later announcements are news.
        self._take_announcements()
        uidnext = answer.get(b"UIDNEXT")
        return FolderState(
            uidvalidity=int(answer.get(b"UIDVALIDITY", 0)),
            uidnext=int(uidnext) if uidnext is not None else None,
            exists=int(answer.get(b"EXISTS", 0)),
        )

    def folder_exists(self, folder: str) -> bool:
        """Whether LIST names the folder."""
        return bool(_translate("LIST", lambda: self.client.folder_exists(folder)))

    def mail_announced(self) -> bool:
        """Whether the server announced new mail (EXISTS) in the selected folder while
        answering a command since the last SELECT or the last call.

        A server reports mail that arrives during a command alongside that command's
        answer and does not repeat it in a later IDLE, so a sync that stops at an empty
        SEARCH must ask this before it idles."""
        return self._take_announcements()

    def _take_announcements(self) -> bool:
        # imaplib files untagged responses nobody asked for here; SELECT flushes them.
        untagged: dict[str, list[Any]] = self.client._imap.untagged_responses
        exists = untagged.pop("EXISTS", None)
        untagged.pop("RECENT", None)
        return bool(exists)

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than `last_uid` in the selected folder, ascending."""
        # "n:*" always matches the highest UID, even when it is below n (RFC 3501 6.4.8),
        # so the answer is filtered, not trusted.
        found = _translate("UID SEARCH", lambda: self.client.search(["UID", f"{last_uid + 1}:*"]))
        return sorted(uid for uid in found if uid > last_uid)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID still present (vanished ones are absent)."""
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), _UIDS_PER_COMMAND):
            chunk = list(uids[start : start + _UIDS_PER_COMMAND])
            answer = _translate(
                "FETCH sizes", functools.partial(self.client.fetch, chunk, ["RFC822.SIZE"])
            )
            for uid, data in answer.items():
                size = data.get(b"RFC822.SIZE")
                if isinstance(size, int):
                    sizes[int(uid)] = size
        return sizes

    def bodies(self, uids: Sequence[int], *, header_only: bool) -> dict[int, bytes]:
        """Whole messages (or headers only) for the UIDs still present; never sets \\Seen."""
        if not uids:
            return {}
        item = "BODY.PEEK[HEADER]" if header_only else "BODY.PEEK[]"
        key = b"BODY[HEADER]" if header_only else b"BODY[]"
        answer = _translate("FETCH", lambda: self.client.fetch(list(uids), [item]))
        found: dict[int, bytes] = {}
        for uid, data in answer.items():
            body = data.get(key)
            if isinstance(body, bytes):
                found[int(uid)] = body
        return found

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Moves messages of the selected folder: MOVE, else COPY + \\Deleted + UID EXPUNGE."""
        if not uids:
            return
        client = self.client
        if self.capability("MOVE"):
            _translate("UID MOVE", lambda: client.move(list(uids), folder))
            return
        _translate("UID COPY", lambda: client.copy(list(uids), folder))
        _translate("STORE", lambda: client.add_flags(list(uids), [b"\\Deleted"]))
        if self.capability("UIDPLUS"):
            _translate("UID EXPUNGE", lambda: client.uid_expunge(list(uids)))
        else:
            # A plain EXPUNGE would also remove mail someone else marked \Deleted.
            log.warning("IMAP server lacks MOVE and UIDPLUS: moved mail stays marked \\Deleted")

    def idle_start(self) -> None:
        """Enters IDLE on the selected folder."""
        _translate("IDLE", self.client.idle)
        self.idling = True
        self._empty_wakeups = 0

    def idle_wait(self, timeout: float) -> bool:
        """Waits up to `timeout` seconds in IDLE; True when the folder got new mail.

        Raises ConnectFailed when the server says BYE or the line is closed."""
        sock = self.client.socket()
        pending = _buffered(self.client) or (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0)
        if not pending:
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_READ)
                if not selector.select(timeout):
                    return False
        responses: Iterable[tuple[Any, ...]] = _translate(
            "IDLE", lambda: self.client.idle_check(timeout=0)
        )
        responses = list(responses)
        if not responses:
            self._empty_wakeups += 1
            if self._empty_wakeups >= _EMPTY_WAKEUPS_MEAN_CLOSED:
                raise ConnectFailed("IDLE: the server closed the connection")
            return False
        self._empty_wakeups = 0
        new_mail = False
        for response in responses:
            if response and response[0] == b"BYE":
                raise ConnectFailed(f"IDLE: the server said goodbye: {response[1:]!r}")
            if len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT"):
                new_mail = True
        return new_mail

    def idle_stop(self) -> None:
        """Leaves IDLE (DONE)."""
        if self.idling:
            self.idling = False
            _translate("IDLE DONE", self.client.idle_done)

    def close(self) -> None:
        """Leaves IDLE if needed and logs out; never raises."""
        if self.idling:
            self.idling = False
            try:
                self.client.idle_done()
            except Exception as err:  # the line may be dead; logout below copes
                log.debug("leaving IDLE on close: %s", err)
        close_quietly(self.client)
