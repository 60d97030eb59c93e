"""The aiohttp application: app factory, CLI, REST API, webhooks, realtime, agent UI."""
