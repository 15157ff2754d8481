"""Model serving for SaveYourLife: decoding, preprocessing and the LiteRT cascade.

Nothing in this package imports TensorFlow or Telegram.
"""
