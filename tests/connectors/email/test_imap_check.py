"""check_imap, the IMAP half of "test connection": field errors, never a traceback."""

from __future__ import annotations

from connectors.email.imap import check_imap
from tests.connectors.email.conftest import Mailbox
from tests.services import free_port


async def test_a_working_mailbox_answers_no_errors(mailbox: Mailbox) -> None:
    mailbox.run(lambda c: c.create_folder("Done"))
    assert await check_imap(mailbox.config()) == {}
    assert await check_imap(mailbox.config(imap_move_to="Done")) == {}


async def test_wrong_password_names_the_password_field(mailbox: Mailbox) -> None:
    errors = await check_imap(mailbox.config(imap_password="wrong"))
    assert list(errors) == ["imap_password"]
    assert errors["imap_password"].startswith("the server refused the user name or password: ")
    assert "Authentication failed" in errors["imap_password"]


async def test_a_missing_folder_names_the_folders_field(mailbox: Mailbox) -> None:
    errors = await check_imap(mailbox.config(imap_folders=["INBOX", "Nope"]))
    assert list(errors) == ["imap_folders"]
    assert "folder 'Nope' does not exist" in errors["imap_folders"]
    assert "INBOX" not in errors["imap_folders"]


async def test_a_missing_move_target_names_its_field(mailbox: Mailbox) -> None:
    errors = await check_imap(mailbox.config(imap_move_to="Archive"))
    assert errors == {"imap_move_to": "folder 'Archive' does not exist"}


async def test_a_closed_port_cannot_connect(mailbox: Mailbox) -> None:
    port = free_port()  # nothing listens there
    errors = await check_imap(mailbox.config(imap_port=port))
    assert list(errors) == ["imap_host"]
    assert errors["imap_host"].startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert "refused" in errors["imap_host"].lower()


async def test_tls_against_a_clear_text_port_is_a_tls_failure(mailbox: Mailbox) -> None:
    errors = await check_imap(mailbox.config(imap_security="tls"))
    assert list(errors) == ["imap_security"]
    assert errors["imap_security"].startswith("TLS failed")


async def test_starttls_not_offered_is_refused_not_downgraded(mailbox: Mailbox) -> None:
    # The test Dovecot runs with ssl = no, so it does not offer STARTTLS.
    errors = await check_imap(mailbox.config(imap_security="starttls"))
    assert list(errors) == ["imap_security"]
    assert "does not offer STARTTLS" in errors["imap_security"]
