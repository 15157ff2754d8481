"""The closed sets of labels the image models speak in: one definition, read by training, serving and the bot."""

from __future__ import annotations

from enum import StrEnum


class TumorType(StrEnum):
    """The typer's classes, in the order its output is trained (alphabetical, as the 4-class data set names them)."""

    GLIOMA = "glioma"
    MENINGIOMA = "meningioma"
    NOTUMOR = "notumor"
    PITUITARY = "pituitary"


class Sequence(StrEnum):
    T1 = "t1"
    T1C = "t1c"  # T1 after contrast
    T2 = "t2"
    FLAIR = "flair"


class Plane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
