"""Time-ordered UUIDs (RFC 9562 version 7), so new rows land at the end of their indexes."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bits are read from the OS in bulk: one getrandom() call per id was a visible
# share of ingestion time.
_pool = b""
_pool_pos = 0
_POOL_BYTES = 8 * 1024


def new_id() -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter (monotonic within a ms), random."""
    global _last_ms, _counter, _pool, _pool_pos
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same millisecond (or a clock step back): keep ordering with the counter.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
        if _pool_pos + 8 > len(_pool):
            _pool, _pool_pos = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_pool_pos : _pool_pos + 8]
        _pool_pos += 8
    rand = int.from_bytes(chunk, "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return uuid.UUID(int=value)
