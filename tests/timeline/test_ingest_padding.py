"""IN lists are padded so a batch of any size reuses a handful of prepared statements."""

from __future__ import annotations

import uuid

import pytest

from timeline.ingest_batch import _padded


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 9, 63, 64, 65, 200])
def test_padded_lists_keep_every_value_and_have_power_of_two_lengths(count: int) -> None:
    values = [uuid.uuid4() for _ in range(count)]
    padded = _padded(values + values[:3])  # duplicates collapse before padding
    assert set(padded) == set(values)
    if count > 1:
        assert len(padded) & (len(padded) - 1) == 0
        assert count <= len(padded) < 2 * count
    else:
        assert len(padded) == count


def test_batch_sizes_share_few_statement_shapes() -> None:
    lengths = {len(_padded(range(n))) for n in range(1, 201)}
    assert lengths == {1, 2, 4, 8, 16, 32, 64, 128, 256}
