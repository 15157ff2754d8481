"""Telegram handlers, one module per concern; wired together in bot.app."""
