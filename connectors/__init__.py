"""Channel connectors: provider input in, one Inbound shape out; outbound messages sent.

Connectors never touch the database. They are handed sinks and a cursor store.
"""
