"""The exported models and their manifest, shipped as package data (`saveyourlife_models`).

Written by `saveyourlife train`; read through `importlib.resources` (bot/settings.py), so an installed wheel finds
them from any working directory. This folder holds no code.
"""
