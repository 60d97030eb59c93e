"""Web form channel: public form submissions become inbound messages and leads."""
