"""The one check of a reply against what its channel can carry."""

from __future__ import annotations

from connectors.base import Capabilities
from connectors.registry import spec_for
from timeline.outbox import OutboundFile
from timeline.reply_limits import reply_refusals

MIB = 1024 * 1024
# Text up to 1,600 characters and 5 MiB of attachments in total, as an MMS channel takes.
MMS = Capabilities(max_text_length=1600, supports_attachments=True, max_attachment_bytes=5 * MIB)


def files(*sizes: int) -> list[OutboundFile]:
    return [
        OutboundFile(f"f{n}.bin", "application/octet-stream", "0" * 64, size)
        for n, size in enumerate(sizes)
    ]


def test_a_reply_within_every_limit_is_accepted() -> None:
    assert reply_refusals(MMS, "x" * 1600, files(2 * MIB, 3 * MIB)) == {}
    assert reply_refusals(Capabilities(), "x" * 100_000) == {}


def test_a_channel_that_cannot_send_refuses_on_channel_id_alone() -> None:
    webform = spec_for("webform").capabilities
    refusals = reply_refusals(webform, "x" * 10_000, files(1))
    assert list(refusals) == ["channel_id"]
    assert "cannot send" in refusals["channel_id"]


def test_too_long_text_names_the_limit() -> None:
    refusals = reply_refusals(spec_for("sms").capabilities, "x" * 1601)
    assert refusals == {
        "text": "this channel carries at most 1,600 characters; this text has 1,601"
    }


def test_attachments_the_channel_does_not_take() -> None:
    refusals = reply_refusals(Capabilities(supports_attachments=False), "hi", files(10))
    assert refusals == {"attachments": "this channel cannot send attachments"}


def test_attachments_over_the_total_limit() -> None:
    refusals = reply_refusals(MMS, "hi", files(3 * MIB, 2 * MIB + 1))
    assert list(refusals) == ["attachments"]
    assert "at most 5.0 MiB" in refusals["attachments"]
    assert reply_refusals(MMS, "hi", files(5 * MIB)) == {}  # exactly at the limit


def test_every_refused_field_is_named_at_once() -> None:
    refusals = reply_refusals(MMS, "x" * 1601, files(6 * MIB))
    assert set(refusals) == {"text", "attachments"}
