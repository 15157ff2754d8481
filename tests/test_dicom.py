"""DICOM decoding: windowing, photometric handling, frames, refusals and privacy.

Every file is generated here with pydicom from small numpy arrays and carries a
fake patient (Doe^Jane, ID-12345, 19800101) so the privacy checks have
something to leak.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import (
    BasicTextSRStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    generate_uid,
)

from inference import dicom
from inference.dicom import DicomSlice, decode_dicom, dicom_summary_for_log, is_dicom
from inference.errors import InputRejected
from inference.imaging import MAX_FILE_BYTES

PATIENT_STRINGS = ("Doe", "Jane", "ID-12345", "19800101")

# Building files with deliberately non-standard CS values ("brain", "Cráneo") makes pydicom warn.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")


def make_dataset(pixels: np.ndarray | None, *, photometric: str = "MONOCHROME2", transfer_syntax=ExplicitVRLittleEndian,
                 frames: int | None = None, **attrs) -> Dataset:
    """A minimal MR image dataset with a fake patient and the given pixels (uint16/int16/uint8, 2-D or 3-D)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "ID-12345"
    ds.PatientBirthDate = "19800101"
    ds.Modality = "MR"
    ds.BodyPartExamined = "HEAD"
    if pixels is not None:
        ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
        if photometric == "RGB":
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.Rows, ds.Columns = pixels.shape[-3:-1] if photometric == "RGB" else pixels.shape[-2:]
        ds.BitsAllocated = pixels.dtype.itemsize * 8
        ds.BitsStored = ds.BitsAllocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
        if frames is not None:
            ds.NumberOfFrames = frames
        ds.PixelData = pixels.tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset, **kwargs) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=kwargs.pop("enforce_file_format", True), **kwargs)
    return buf.getvalue()


def disc(value_in: int, value_out: int, size: int = 64, dtype=np.uint16) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    return np.where(inside, value_in, value_out).astype(dtype)


def centre(img: Image.Image) -> int:
    return img.getpixel((img.width // 2, img.height // 2))


def corner(img: Image.Image) -> int:
    return img.getpixel((1, 1))


def rejected(data: bytes, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        decode_dicom(data, **kwargs)
    return info.value


# --------------------------------------------------------------------------- windowing


def test_monochrome2_16bit_uses_the_file_window():
    data = to_bytes(make_dataset(disc(1500, 100), WindowCenter=1000, WindowWidth=1000))
    s = decode_dicom(data)
    assert isinstance(s, DicomSlice)
    assert s.image.mode == "L" and s.image.size == (64, 64)
    assert s.window == (1000.0, 1000.0) and s.window_source == "file"
    assert centre(s.image) == 255  # 1500 is above the window
    assert corner(s.image) == 0  # 100 is below it
    assert s.modality == "MR" and s.body_part == "HEAD" and s.warnings == ()
    assert s.frames == 1 and s.frame_index == 0
    assert s.transfer_syntax == f"Explicit VR Little Endian ({ExplicitVRLittleEndian})"


def test_multivalued_window_uses_the_first_pair():
    data = to_bytes(make_dataset(disc(600, 400), WindowCenter=[500, 40], WindowWidth=[400, 80]))
    s = decode_dicom(data)
    assert s.window == (500.0, 400.0)
    assert abs(centre(s.image) - 191) <= 1  # (600 - 300) / 400 * 255
    assert abs(corner(s.image) - 64) <= 1


def test_monochrome1_lowest_value_is_white():
    """A bright (high-valued) disc in MONOCHROME1 is displayed dark; the low background white."""
    pixels = disc(1000, 100)
    mono1 = decode_dicom(to_bytes(make_dataset(pixels, photometric="MONOCHROME1")))
    mono2 = decode_dicom(to_bytes(make_dataset(pixels, photometric="MONOCHROME2")))
    assert centre(mono1.image) == 0 and corner(mono1.image) == 255
    assert centre(mono2.image) == 255 and corner(mono2.image) == 0
    with_window = decode_dicom(to_bytes(make_dataset(pixels, photometric="MONOCHROME1", WindowCenter=550, WindowWidth=900)))
    assert centre(with_window.image) == 0 and corner(with_window.image) == 255


def test_rescale_slope_and_intercept_are_applied_before_the_window():
    # stored 500 -> 2*500 - 1000 = 0 (window centre); stored 450 -> -100 (below the window)
    pixels = disc(500, 450, dtype=np.uint16)
    ds = make_dataset(pixels, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=200)
    s = decode_dicom(to_bytes(ds))
    assert abs(centre(s.image) - 128) <= 1
    assert corner(s.image) == 0
    # Without the rescale, the same window would saturate both to white.
    plain = decode_dicom(to_bytes(make_dataset(pixels, WindowCenter=0, WindowWidth=200)))
    assert centre(plain.image) == 255 and corner(plain.image) == 255


def test_signed_pixels_with_negative_values():
    pixels = disc(-200, -1000, dtype=np.int16)
    s = decode_dicom(to_bytes(make_dataset(pixels, WindowCenter=-600, WindowWidth=800)))
    assert centre(s.image) == 255 and corner(s.image) == 0


def test_no_window_falls_back_to_percentiles():
    ramp = np.tile(np.arange(0, 4000, 40, dtype=np.uint16), (100, 1))  # 0..3960
    ramp[0, 0] = 65535  # one hot pixel must not wreck the window
    s = decode_dicom(to_bytes(make_dataset(ramp)))
    assert s.window_source == "percentile"
    c, w = s.window
    assert 1800 < c < 2200 and 3700 < w < 4000
    arr = np.asarray(s.image)
    assert arr.min() == 0 and arr.max() == 255
    assert 100 < arr[50, 50] < 160  # the middle of the ramp stays mid-grey


def test_invalid_file_window_falls_back_with_a_warning():
    s = decode_dicom(to_bytes(make_dataset(disc(900, 100), WindowCenter=500, WindowWidth=0)))
    assert s.window_source == "percentile"
    assert "file_window_invalid" in s.warnings
    assert centre(s.image) == 255 and corner(s.image) == 0


def test_constant_image_does_not_divide_by_zero():
    s = decode_dicom(to_bytes(make_dataset(np.full((40, 40), 7, np.uint16))))
    assert s.window_source == "percentile"
    assert np.asarray(s.image).max() == 0


def test_8bit_and_rgb_images():
    s8 = decode_dicom(to_bytes(make_dataset(disc(200, 20, dtype=np.uint8))))
    assert s8.image.mode == "L" and centre(s8.image) == 255
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[12:36, 12:36] = (250, 250, 250)
    s = decode_dicom(to_bytes(make_dataset(rgb, photometric="RGB")))
    assert s.image.mode == "L" and s.image.size == (48, 48)
    assert "color_converted" in s.warnings
    assert centre(s.image) == 255 and corner(s.image) == 0


# --------------------------------------------------------------------------- frames


def multiframe_bytes() -> bytes:
    stack = np.stack([np.full((32, 32), v, np.uint16) for v in (100, 500, 900)])
    stack[:, 0, 0] += 1  # "constant-ish"
    return to_bytes(make_dataset(stack, frames=3, WindowCenter=500, WindowWidth=1000))


def test_multiframe_defaults_to_the_middle_frame():
    s = decode_dicom(multiframe_bytes())
    assert s.frames == 3 and s.frame_index == 1
    assert abs(centre(s.image) - 128) <= 1


def test_multiframe_explicit_frame():
    data = multiframe_bytes()
    first = decode_dicom(data, frame=0)
    last = decode_dicom(data, frame=2)
    assert first.frame_index == 0 and abs(centre(first.image) - 25) <= 1
    assert last.frame_index == 2 and abs(centre(last.image) - 230) <= 1


@pytest.mark.parametrize("frame", [3, -1, 99])
def test_multiframe_out_of_range_is_rejected_not_clamped(frame):
    err = rejected(multiframe_bytes(), frame=frame)
    assert err.code == "dicom_bad_frame"
    assert "3 frame" in err.detail


# --------------------------------------------------------------------------- warnings


def test_ct_gives_not_mr():
    s = decode_dicom(to_bytes(make_dataset(disc(900, 100), Modality="CT")))
    assert s.modality == "CT" and "not_mr" in s.warnings and "not_head" not in s.warnings


def test_chest_gives_not_head():
    s = decode_dicom(to_bytes(make_dataset(disc(900, 100), BodyPartExamined="CHEST")))
    assert s.body_part == "CHEST" and "not_head" in s.warnings and "not_mr" not in s.warnings


@pytest.mark.parametrize("part", ["HEAD", "brain", "Skull", "CEREBRUM", "CABEZA", "CEREBRO", "CRANEO", "Cráneo", "HEADNECK", "BRAIN MRI"])
def test_head_body_parts_are_accepted(part):
    s = decode_dicom(to_bytes(make_dataset(disc(900, 100), BodyPartExamined=part)))
    assert "not_head" not in s.warnings


def test_missing_modality_and_body_part_give_no_warning():
    ds = make_dataset(disc(900, 100))
    del ds.Modality
    del ds.BodyPartExamined
    s = decode_dicom(to_bytes(ds))
    assert s.modality is None and s.body_part is None and s.warnings == ()


# --------------------------------------------------------------------------- refusals


def test_no_pixel_data():
    report = make_dataset(None)
    report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    err = rejected(to_bytes(report))
    assert err.code == "dicom_no_pixels" and "report" in err.detail
    # An MR *image* without pixels gets the same code, with a hint that it was cut short.
    err = rejected(to_bytes(make_dataset(None)))
    assert err.code == "dicom_no_pixels" and "truncated" in err.detail


def encapsulated_junk(transfer_syntax) -> bytes:
    ds = make_dataset(disc(900, 100), transfer_syntax=transfer_syntax)
    ds.PixelData = encapsulate([b"\x00\x01junk-not-a-codestream" * 8])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return to_bytes(ds, implicit_vr=False, little_endian=True)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless])
def test_compressed_syntax_without_a_working_handler(syntax):
    """JPEG 2000 may be decodable (Pillow has openjpeg); junk bytes must still be a clear refusal."""
    data = encapsulated_junk(syntax)
    try:
        s = decode_dicom(data)
    except InputRejected as err:
        assert err.code == "dicom_unsupported_syntax"
        assert syntax.name in err.detail and str(syntax) in err.detail
        assert "PNG" in err.detail
    else:  # pragma: no cover - only if some codec accepts junk
        assert s.image.mode == "L"


def test_missing_handler_is_reported_before_decoding():
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS handler is installed here")
    err = rejected(encapsulated_junk(JPEGLSLossless))
    assert err.code == "dicom_unsupported_syntax"
    assert err.detail.startswith("JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80) is not supported")


def test_unknown_transfer_syntax():
    err = rejected(encapsulated_junk("1.2.3.4.5.6"))
    assert err.code == "dicom_unsupported_syntax"
    assert "1.2.3.4.5.6" in err.detail


def test_truncated_pixel_data_is_corrupt():
    data = to_bytes(make_dataset(disc(900, 100)))
    err = rejected(data[: len(data) - 3000])
    assert err.code == "dicom_corrupt"


@pytest.mark.parametrize("cut", [140, 200, 300, 400])
def test_truncated_header_is_corrupt(cut):
    """Cut inside the file meta or the first elements: pydicom reads it silently, we must not."""
    data = to_bytes(make_dataset(disc(900, 100)))
    assert rejected(data[:cut]).code == "dicom_corrupt"


def test_truncated_between_elements_is_rejected_clearly():
    """Cut exactly between two header elements: nothing is visibly broken, but the image is missing."""
    data = to_bytes(make_dataset(disc(900, 100)))
    for cut in range(450, 720, 10):
        assert rejected(data[:cut]).code in ("dicom_corrupt", "dicom_no_pixels")


def test_non_dicom_bytes_are_corrupt():
    assert rejected(jpeg_bytes()).code == "dicom_corrupt"
    assert rejected(b"hello world" * 20).code == "dicom_corrupt"
    assert rejected(b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4).code in ("dicom_corrupt", "dicom_no_pixels")


def test_too_large_and_empty():
    assert rejected(b"").code == "empty"
    assert rejected(b"\x00" * (MAX_FILE_BYTES + 1)).code == "too_large"


def test_declared_pixel_bomb_is_refused_before_decoding():
    ds = make_dataset(np.zeros((8, 8), np.uint16))
    ds.Rows = ds.Columns = 65535  # 4.3 gigapixels declared, 128 bytes present
    err = rejected(to_bytes(ds))
    assert err.code == "too_many_pixels"


def test_deflated_dataset_decodes_and_deflate_bomb_is_refused(monkeypatch):
    data = to_bytes(make_dataset(disc(900, 100), transfer_syntax=DeflatedExplicitVRLittleEndian))
    assert centre(decode_dicom(data).image) == 255
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 1000)
    assert rejected(data).code == "too_large"


# --------------------------------------------------------------------------- detection


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 120, 120)).save(buf, "JPEG")
    return buf.getvalue()


def test_renamed_jpeg_is_not_dicom():
    assert is_dicom(jpeg_bytes(), "scan.dcm") is False
    png = io.BytesIO()
    Image.new("L", (40, 40)).save(png, "PNG")
    assert is_dicom(png.getvalue(), "SCAN.DCM") is False
    assert is_dicom(b"just some text", "notes.dcm") is False
    assert is_dicom(b"", "empty.dcm") is False


def test_preamble_is_detected_whatever_the_name():
    data = to_bytes(make_dataset(disc(900, 100)))
    assert is_dicom(data, "IMG_0001.JPG") is True
    assert is_dicom(data, None) is True
    assert is_dicom(data) is True


def test_raw_dataset_without_preamble_needs_the_dcm_name():
    ds = make_dataset(disc(900, 100))
    del ds.file_meta
    data = to_bytes(ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert data[128:132] != b"DICM"
    assert is_dicom(data, "slice.dcm") is True
    assert is_dicom(data, "slice.bin") is False
    s = decode_dicom(data)
    assert s.transfer_syntax.startswith("Implicit VR Little Endian")
    assert centre(s.image) == 255


# --------------------------------------------------------------------------- privacy


def test_no_patient_data_in_repr_summary_logs_or_warnings(caplog):
    data = to_bytes(make_dataset(disc(900, 100), Modality="CT", BodyPartExamined="CHEST"))
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = decode_dicom(data)
        summary = dicom_summary_for_log(s)
    texts = [repr(s), str(s), repr(summary), caplog.text, *(str(w.message) for w in caught)]
    for text in texts:
        for secret in PATIENT_STRINGS:
            assert secret not in text
    assert set(summary) == {"modality", "body_part", "frames", "frame_index", "transfer_syntax", "window_source"}
    assert summary == {"modality": "CT", "body_part": "CHEST", "frames": 1, "frame_index": 0,
                       "transfer_syntax": s.transfer_syntax, "window_source": "percentile"}


def test_slice_has_no_patient_fields():
    names = set(DicomSlice.__dataclass_fields__)
    assert names == {"image", "modality", "body_part", "frames", "frame_index", "transfer_syntax",
                     "window", "window_source", "warnings"}


def test_rejection_details_carry_no_patient_data():
    bad = [to_bytes(make_dataset(None)), encapsulated_junk(JPEG2000Lossless),
           to_bytes(make_dataset(disc(900, 100)))[:-3000], multiframe_bytes()]
    for data in bad:
        with pytest.raises(InputRejected) as info:
            decode_dicom(data, frame=7 if data is bad[-1] else None)
        for secret in PATIENT_STRINGS:
            assert secret not in info.value.detail and secret not in str(info.value)


def test_free_text_body_part_is_sanitised():
    s = decode_dicom(to_bytes(make_dataset(disc(900, 100), BodyPartExamined="Cráneo <b>x</b>")))
    assert s.body_part == "CRANEO BXB"  # accents folded, markup characters dropped, <= 16 chars
    assert "not_head" not in s.warnings


def test_inference_package_stays_light():
    """In a fresh interpreter: other test modules import telegram, so sys.modules here proves nothing."""
    import subprocess
    import sys

    code = ("import sys, inference.dicom, inference.scan, inference.cascade\n"
            "bad = [m for m in ('tensorflow', 'keras', 'telegram') if m in sys.modules]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
