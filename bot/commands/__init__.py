"""The non-Telegram subcommands of the CLI."""
