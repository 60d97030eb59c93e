"""The core domain: contacts, channels, conversations, messages, the timeline, ingestion, outbox."""
