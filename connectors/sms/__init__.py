"""SMS channel through Twilio."""
