"""Training, evaluation and export of the SaveYourLife models (needs the `train` extra)."""
