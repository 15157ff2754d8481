"""Turn an untrusted DICOM upload into one 8-bit greyscale slice, and nothing else.

Privacy: the dataset (names, IDs, dates, free text) never leaves this module.
`DicomSlice` holds only the picture and a few technical, sanitised fields, and
`dicom_summary_for_log` is the subset that may be logged or stored. Nothing
here logs, and pydicom's warnings (which can quote element values) are silenced.

Safety: the file size is capped (imaging.MAX_FILE_BYTES), the declared frame
size is checked before any decoding (decompression bombs), only the requested
frame is decoded, and deflated datasets are inflated with a bound first.

Rescale and windowing are pydicom's (`apply_modality_lut`, `apply_voi_lut`), fed
small datasets built here from checked values: pydicom trusts the file, and a
malformed slope or window must give a warning code, not an exception.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder  # the defining modules: `pydicom.pixels` does not
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut  # mark its re-exports public
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from .errors import InputRejected
from .imaging import MAX_FILE_BYTES, MAX_PIXELS

__all__ = [
    "DicomSlice",
    "HEAD_BODY_PARTS",
    "MAX_FRAME_PIXELS",
    "decode_dicom",
    "dicom_summary_for_log",
    "is_dicom",
]

# Per-frame limit on Rows*Columns, the same budget as for ordinary pictures.
MAX_FRAME_PIXELS = MAX_PIXELS
# A deflated dataset may not inflate beyond this (a 20 MB zlib stream can claim gigabytes).
MAX_INFLATED_BYTES = 8 * MAX_FILE_BYTES

PERCENTILES = (0.5, 99.5)
# Percentiles of a frame larger than this are taken on a regular subsample: same answer, less CPU.
_PERCENTILE_SAMPLE = 4_000_000
# pydicom's LUTs work in float64 with a few masks; a band of this many pixels at a time keeps a
# 40-megapixel frame from needing several whole float64 copies of itself.
_LUT_BLOCK_PIXELS = 1 << 20
# VOI LUT Functions pydicom implements (PS3.3 C.11.2.1.2); anything else in a file means the default, LINEAR.
_VOI_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})

# Exact BodyPartExamined values that mean "head"; plus substrings for free text in other
# languages (after upper-casing and removing accents): CABEZA, CEREBRO, CRANEO, ENCEFALO…
HEAD_BODY_PARTS = frozenset({"HEAD", "BRAIN", "SKULL", "CEREBRUM"})
_HEAD_SUBSTRINGS = ("HEAD", "BRAIN", "SKULL", "CEREBR", "CABEZA", "CRANE", "CRANI", "ENCEFAL")

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DICM_OFFSET = 128
_DEFLATED_UID_BYTES = str(DeflatedExplicitVRLittleEndian).encode("ascii")
# Signatures of ordinary pictures: a photo renamed to .dcm is not a DICOM file.
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")

WindowSource = Literal["file", "percentile"]


@dataclass(frozen=True)
class DicomSlice:
    """One displayable slice. Deliberately holds no patient or study fields.

    `window` is the (centre, width) actually applied, in rescaled (modality) units.
    `warnings` are codes for the bot: "not_mr", "not_head", "color_converted",
    "file_window_invalid", "rescale_invalid".
    """

    image: Image.Image
    modality: str | None
    body_part: str | None
    frames: int
    frame_index: int
    transfer_syntax: str
    window: tuple[float, float]
    window_source: WindowSource
    warnings: tuple[str, ...] = ()


def dicom_summary_for_log(s: DicomSlice) -> dict[str, Any]:
    """The only DICOM facts allowed into logs and the database (no pixels, no patient data)."""
    return {
        "modality": s.modality,
        "body_part": s.body_part,
        "frames": s.frames,
        "frame_index": s.frame_index,
        "transfer_syntax": s.transfer_syntax,
        "window_source": s.window_source,
    }


# --------------------------------------------------------------------------- detection


def is_dicom(data: bytes, file_name: str | None = None) -> bool:
    """Should these bytes go to `decode_dicom` rather than `imaging.decode_image`?

    True for the standard "DICM" prefix at offset 128. Raw datasets without the
    preamble are only trusted when the name says .dcm/.dicom AND pydicom finds pixel
    data or a SOP Class UID in them, so a renamed JPEG stays an ordinary picture.
    """
    if len(data) >= _DICM_OFFSET + 4 and data[_DICM_OFFSET:_DICM_OFFSET + 4] == b"DICM":
        return True
    if not file_name or not file_name.strip().lower().endswith((".dcm", ".dicom")):
        return False
    if not data or len(data) > MAX_FILE_BYTES or data.startswith(_IMAGE_MAGICS):
        return False
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return False
    try:
        ds = _read(data)
        return any(kw in ds for kw in _PIXEL_KEYWORDS) or "SOPClassUID" in ds
    except Exception:  # noqa: BLE001 - any parse failure simply means "not DICOM"
        return False


# --------------------------------------------------------------------------- decoding


def decode_dicom(data: bytes, frame: int | None = None) -> DicomSlice:
    """Decode one frame of a DICOM file into a windowed 8-bit greyscale slice.

    `frame` is a 0-based index; by default the middle frame (n // 2) of a
    multi-frame file. An index outside 0..n-1 raises InputRejected
    "dicom_bad_frame" rather than being clamped, so the user never gets a
    different slice from the one they asked for.

    Raises InputRejected with code: empty, too_large, dicom_corrupt,
    dicom_no_pixels, too_many_pixels, dicom_bad_frame, dicom_unsupported_syntax.
    """
    if not data:
        raise InputRejected("empty", "the file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise InputRejected("too_large", f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MB")
    with warnings.catch_warnings():
        # pydicom warnings may quote element values (names, IDs): never let them out.
        warnings.simplefilter("ignore")
        return _decode(data, frame)


def _decode(data: bytes, frame: int | None) -> DicomSlice:
    _check_deflate_bomb(data)
    try:
        ds = _read(data)
    except Exception as exc:  # noqa: BLE001 - untrusted input, any failure is "corrupt"
        raise InputRejected("dicom_corrupt", f"the file could not be read as DICOM ({type(exc).__name__})") from None

    try:
        present = [kw for kw in _PIXEL_KEYWORDS if kw in ds]
    except Exception:  # noqa: BLE001
        present = []
    if not present:
        # pydicom reads a cut-off file without complaint; tell "truncated" and "not DICOM at all"
        # apart from a genuine image-less object (a report, a structured document).
        if _is_truncated(ds) or len(ds) == 0:
            raise InputRejected("dicom_corrupt", "the DICOM file is truncated or empty")
        sop = _str_attr(ds, "SOPClassUID") or _str_attr(getattr(ds, "file_meta", Dataset()), "MediaStorageSOPClassUID")
        if not sop:
            raise InputRejected("dicom_corrupt", "the file could not be read as DICOM (no SOP Class, no image)")
        if "Image Storage" in UID(sop).name or "Rows" in ds:
            raise InputRejected("dicom_no_pixels", "the DICOM image has no Pixel Data element; the file may be truncated")
        raise InputRejected("dicom_no_pixels", "the DICOM file has no image (no Pixel Data element); "
                                               "it may be a report or a structured document")

    ts = _transfer_syntax(ds)
    ts_name = _syntax_name(ts)
    rows = _int_attr(ds, "Rows")
    columns = _int_attr(ds, "Columns")
    if rows is None or columns is None or rows <= 0 or columns <= 0:
        raise InputRejected("dicom_corrupt", "the DICOM file lacks valid Rows/Columns for its image")
    if rows * columns > MAX_FRAME_PIXELS:
        raise InputRejected("too_many_pixels", f"the DICOM image is {columns}x{rows} pixels; "
                                               f"the limit is {MAX_FRAME_PIXELS // 1_000_000} megapixels")
    frames = _int_attr(ds, "NumberOfFrames")
    frames = frames if frames is not None and frames >= 1 else 1

    if frame is None:
        index = frames // 2
    elif isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < frames:
        raise InputRejected("dicom_bad_frame", f"frame {frame!r} does not exist; "
                                               f"the file has {frames} frame(s), numbered 0 to {frames - 1}")
    else:
        index = frame

    unsupported = f"{ts_name} is not supported; export the slice as PNG or uncompressed DICOM"
    try:
        decoder = get_decoder(ts)
    except Exception:  # noqa: BLE001 - NotImplementedError for unknown/private syntaxes
        raise InputRejected("dicom_unsupported_syntax", unsupported) from None
    if not decoder.is_available:
        raise InputRejected("dicom_unsupported_syntax", unsupported)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            arr, meta = decoder.as_array(ds, index=index)
        except Exception as exc:  # noqa: BLE001 - third-party codecs on untrusted bytes
            if isinstance(exc, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
                raise InputRejected("too_many_pixels", "the compressed image declares too many pixels (decompression bomb)") from None
            if decoder.is_native:
                raise InputRejected("dicom_corrupt", f"the DICOM pixel data is damaged or truncated ({type(exc).__name__})") from None
            raise InputRejected(
                "dicom_unsupported_syntax",
                f"{ts_name} pixel data could not be decoded with the installed handlers; "
                "export the slice as PNG or uncompressed DICOM",
            ) from None

    notes: list[str] = []
    photometric = str(meta.get("photometric_interpretation") or _str_attr(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    if arr.ndim == 3 or photometric == "PALETTE COLOR":
        values = _colour_to_luminance(arr, photometric, ds)
        notes.append("color_converted")
        monochrome1 = False
    elif arr.ndim == 2:
        values = _rescale(arr, ds, notes)
        monochrome1 = photometric == "MONOCHROME1"
    else:
        raise InputRejected("dicom_corrupt", f"the DICOM pixel data has an unexpected shape ({arr.ndim} dimensions)")

    window, source = _file_window(ds, notes) if arr.ndim == 2 and photometric != "PALETTE COLOR" else (None, "percentile")
    if window is None:
        # LINEAR_EXACT maps [centre - width/2, centre + width/2] onto 0..255 exactly; LINEAR's half-pixel
        # offsets are for windows chosen by a person, and a percentile window may be narrower than 1.
        window, source, function = _percentile_window(values), "percentile", "LINEAR_EXACT"
    else:
        function = _voi_function(ds)
    out = _apply_window(values, *window, function)
    if monochrome1:
        # MONOCHROME1: the lowest value is white. Invert after windowing so higher = brighter.
        out = 255 - out
    image = Image.fromarray(np.ascontiguousarray(out, dtype=np.uint8))

    modality = _clean_code(_str_attr(ds, "Modality"))
    body_part = _clean_code(_str_attr(ds, "BodyPartExamined"))
    if modality is not None and modality != "MR":
        notes.append("not_mr")
    if body_part is not None and not _is_head(body_part):
        notes.append("not_head")
    return DicomSlice(
        image=image,
        modality=modality,
        body_part=body_part,
        frames=frames,
        frame_index=index,
        transfer_syntax=ts_name,
        window=(float(window[0]), float(window[1])),
        window_source=source,
        warnings=tuple(dict.fromkeys(notes)),
    )


# --------------------------------------------------------------------------- helpers


def _read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True)


def _check_deflate_bomb(data: bytes) -> None:
    """pydicom inflates a deflated dataset in one unbounded call; do a bounded trial first."""
    if _DEFLATED_UID_BYTES not in data[:4096]:
        return
    try:
        from pydicom.filereader import _read_file_meta_info, read_preamble

        fp = io.BytesIO(data)
        read_preamble(fp, True)
        meta = _read_file_meta_info(fp)
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflated = inflater.decompress(fp.read(), MAX_INFLATED_BYTES + 1)
    except Exception as exc:  # noqa: BLE001
        raise InputRejected("dicom_corrupt", f"the deflated DICOM file could not be read ({type(exc).__name__})") from None
    if len(inflated) > MAX_INFLATED_BYTES:
        raise InputRejected("too_large", f"the deflated DICOM file expands beyond {MAX_INFLATED_BYTES // (1024 * 1024)} MB")


def _is_truncated(ds: Dataset) -> bool:
    """True when a top-level element holds fewer bytes than its declared length (file cut short)."""
    try:
        for dataset in (getattr(ds, "file_meta", Dataset()), ds):
            for tag in list(dataset.keys()):
                elem = dataset.get_item(tag)
                length = getattr(elem, "length", None)
                value = getattr(elem, "value", None)
                if isinstance(value, (bytes, bytearray)) and isinstance(length, int) and length != 0xFFFFFFFF and len(value) < length:
                    return True
    except Exception:  # noqa: BLE001
        return True
    return False


def _transfer_syntax(ds: Dataset) -> UID:
    """The file's transfer syntax, or the encoding pydicom detected for a raw dataset without meta."""
    meta = getattr(ds, "file_meta", None)
    try:
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
    except Exception:  # noqa: BLE001
        ts = None
    if ts:
        return UID(str(ts).strip("\x00 "))
    implicit, little = ds.original_encoding
    if little is False:
        return ExplicitVRBigEndian
    if implicit is False:
        return ExplicitVRLittleEndian
    return ImplicitVRLittleEndian


def _syntax_name(ts: UID) -> str:
    """Human name with the UID, e.g. "JPEG 2000 Image Compression (1.2.840.10008.1.2.4.91)"."""
    uid = re.sub(r"[^0-9.]", "", str(ts))[:64] or "?"
    try:
        known = ts.type == "Transfer Syntax"
    except Exception:  # noqa: BLE001
        known = False
    return f"{ts.name} ({uid})" if known else f"Unknown transfer syntax ({uid})"


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _int_attr(ds: Dataset, keyword: str) -> int | None:
    try:
        value = _first(ds.get(keyword))
        return None if value is None or value == "" else int(value)
    except Exception:  # noqa: BLE001
        return None


def _float_attr(ds: Dataset, keyword: str) -> float | None:
    try:
        value = _first(ds.get(keyword))
        if value is None or value == "":
            return None
        number = float(value)
        return number if math.isfinite(number) else None
    except Exception:  # noqa: BLE001
        return None


def _str_attr(ds: Dataset, keyword: str) -> str | None:
    try:
        value = _first(ds.get(keyword))
        return None if value is None else str(value)
    except Exception:  # noqa: BLE001
        return None


def _clean_code(value: str | None) -> str | None:
    """A CS value reduced to A-Z, digits, space, _ and -, at most 16 chars (nothing free-form escapes)."""
    if not value:
        return None
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").upper()
    cleaned = re.sub(r"[^A-Z0-9 _-]", "", ascii_).strip()[:16].strip()
    return cleaned or None


def _is_head(body_part: str) -> bool:
    return body_part in HEAD_BODY_PARTS or any(s in body_part for s in _HEAD_SUBSTRINGS)


def _rescale(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Stored values → modality units (RescaleSlope/Intercept), so file windows mean what they say.

    A missing slope or intercept means 1 or 0; an unreadable one, or a zero slope, is ignored
    ("rescale_invalid") rather than handed to pydicom, which would trust it.
    """
    slope = _float_attr(ds, "RescaleSlope")
    intercept = _float_attr(ds, "RescaleIntercept")
    if ("RescaleSlope" in ds and slope is None) or ("RescaleIntercept" in ds and intercept is None) or slope == 0:
        notes.append("rescale_invalid")
        slope = intercept = None
    if slope in (None, 1) and intercept in (None, 0):
        return arr.astype(np.float32, copy=False)
    rescale = Dataset()
    rescale.RescaleSlope = 1.0 if slope is None else slope
    rescale.RescaleIntercept = 0.0 if intercept is None else intercept
    return _in_bands(lambda band: apply_modality_lut(band, rescale), arr, np.float32)


def _colour_to_luminance(arr: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """Colour DICOM (secondary captures, screenshots) → one luminance plane (ITU-R 601)."""
    if photometric == "PALETTE COLOR" and arr.ndim == 2:
        from pydicom.pixels.processing import apply_color_lut

        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:  # noqa: BLE001
            raise InputRejected("dicom_corrupt", f"the DICOM palette could not be applied ({type(exc).__name__})") from None
    if arr.ndim != 3 or arr.shape[-1] < 1:
        raise InputRejected("dicom_corrupt", "the DICOM colour pixel data has an unexpected shape")
    if photometric.startswith("YBR") or arr.shape[-1] < 3:
        return arr[..., 0].astype(np.float32)  # Y is already luminance
    rgb: NDArray[np.float32] = arr[..., :3].astype(np.float32)
    luminance: NDArray[np.float32] = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return luminance


def _file_window(ds: Dataset, notes: list[str]) -> tuple[tuple[float, float] | None, WindowSource]:
    """The first WindowCenter/WindowWidth pair, if present and usable (width must be >= 1)."""
    if "WindowCenter" not in ds and "WindowWidth" not in ds:
        return None, "percentile"
    centre = _float_attr(ds, "WindowCenter")
    width = _float_attr(ds, "WindowWidth")
    if centre is None or width is None or width < 1:
        notes.append("file_window_invalid")
        return None, "percentile"
    return (centre, width), "file"


def _voi_function(ds: Dataset) -> str:
    """The file's VOI LUT Function for its window, LINEAR (the standard's default) unless it names another."""
    function = _clean_code(_str_attr(ds, "VOILUTFunction"))
    return function if function in _VOI_FUNCTIONS else "LINEAR"


def _percentile_window(values: np.ndarray) -> tuple[float, float]:
    """A robust 0.5–99.5 % window: ignores a few hot pixels and the odd padding value."""
    flat = values.ravel()
    if flat.size > _PERCENTILE_SAMPLE:
        flat = flat[:: flat.size // _PERCENTILE_SAMPLE + 1]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.5, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, PERCENTILES))
    if hi > lo:
        return (lo + hi) / 2.0, hi - lo
    return lo + 0.5, 1.0  # a flat picture: every value at the bottom of the window, black


def _apply_window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """pydicom's VOI windowing (PS3.3 C.11.2.1.2) of modality values into 0..255.

    The dataset handed to pydicom holds only the window, and 8 unsigned output bits so that its output
    range is already 0..255. MONOCHROME1 is inverted by the caller, after windowing.
    """
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8
    voi.PixelRepresentation = 0
    voi.WindowCenter = centre
    voi.WindowWidth = width
    voi.VOILUTFunction = function

    def to_grey(band: np.ndarray) -> np.ndarray:
        grey: NDArray[np.float64] = np.nan_to_num(apply_voi_lut(band, voi), copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(np.rint(grey), 0, 255)

    return _in_bands(to_grey, values, np.uint8)


def _in_bands(lut: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """`lut(values)` as a new `dtype` array, computed a band of rows at a time (see _LUT_BLOCK_PIXELS)."""
    out = np.empty(values.shape, dtype)
    rows = max(1, _LUT_BLOCK_PIXELS // max(1, values.shape[-1]))
    for top in range(0, values.shape[0], rows):
        out[top:top + rows] = lut(values[top:top + rows])
    return out
