"""IDLE notices mail whose announcement imaplib has already read into its buffer.

Dovecot may send "* N EXISTS" in the same packet as IDLE's "+ idling"; imaplib then
holds it in its buffered reader, where a poll on the socket never sees it. Here the
announcement is pulled into the buffer on purpose, and the wait must still report it.
"""

from __future__ import annotations

import select

from connectors.email.imap_session import Session, open_client
from tests.connectors.email.conftest import Mailbox, message


def test_an_announcement_already_in_the_buffer_is_seen(mailbox: Mailbox) -> None:
    mailbox.append_sync([message(1)])
    session = Session(open_client(mailbox.config(), 30.0))
    try:
        session.client.select_folder("INBOX", readonly=True)
        session.idle_start()
        mailbox.append_sync([message(2)])
        sock = session.client.socket()
        readable, _, _ = select.select([sock], [], [], 30.0)
        assert readable, "the server announced nothing"
        # What imaplib does when the announcement shares a packet with "+ idling".
        assert session.client._imap.file.peek(1)
        assert select.select([sock], [], [], 0.2)[0] == []  # the socket looks quiet now
        assert session.idle_wait(1.0) is True
    finally:
        session.close()
