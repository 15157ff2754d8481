"""One entry point for every uploaded file: DICOM or ordinary picture → validated image."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .imaging import decode_image


@dataclass(frozen=True)
class Scan:
    image: Image.Image  # 8-bit RGB
    sha256: str
    kind: str  # "image" | "dicom"
    dicom: dict[str, Any] = field(default_factory=dict)  # modality, body_part, frames, frame_index… never patient tags
    warnings: tuple[str, ...] = ()


def load_scan(data: bytes, file_name: str | None = None, frame: int | None = None) -> Scan:
    """Decode an upload, or raise InputRejected with a user-facing reason code."""
    digest = hashlib.sha256(data).hexdigest()
    from .dicom import decode_dicom, dicom_summary_for_log, is_dicom

    if is_dicom(data, file_name):
        sl = decode_dicom(data, frame=frame)
        return Scan(sl.image.convert("RGB"), digest, "dicom", dicom_summary_for_log(sl), tuple(sl.warnings))
    decoded = decode_image(data)
    return Scan(decoded.image, digest, "image", {}, ())
