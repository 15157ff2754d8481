"""Understanding a message: safety first (red flags), then topic (lexicon) and question (classifier), language."""
