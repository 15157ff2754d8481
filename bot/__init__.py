"""SaveYourLife's Telegram bot, chat router and command line. Knows nothing of Keras."""
