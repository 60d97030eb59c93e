"""Telegram channel through a bot (aiogram)."""
