"""`saveyourlife predict [--json] [--heatmap DIR] FILE...`"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from inference.cascade import Cascade, CascadeResult
from inference.errors import InputRejected
from inference.picture import PictureAnalysis, analyse_picture
from inference.scan import load_scan

from ..loader import load_models
from ..messages import t
from ..render import picture_html, to_plain


def _record(path: str, cascade: Cascade, heatmap_dir: Path | None) -> tuple[dict, PictureAnalysis | None, tuple]:
    started = time.perf_counter()
    record = {"file": path, "ok": False, "error": None, "mri_probability": None, "tumor_probability": None,
              "type_probabilities": None, "verdict": None, "tumor_type": None, "sequence": None, "plane": None,
              "latency_ms": None}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        record["error"] = f"cannot read the file ({exc.strerror or type(exc).__name__})"
        return record, None, ()
    try:
        scan = load_scan(data, Path(path).name)
        analysis = analyse_picture(cascade, scan.image, started, real_world=scan.kind != "dicom")
    except InputRejected as exc:
        record["error"] = exc.detail
        record["error_code"] = exc.code
        return record, None, ()
    result = analysis.result
    record.update(ok=True, **_result_fields(result), crop_box=list(analysis.crop_box), located_by=analysis.located_by,
                  latency_ms=round((time.perf_counter() - started) * 1000, 2))
    if analysis.is_sheet:
        record["grid"] = list(analysis.grid)
        record["drivers"] = list(analysis.drivers)
        record["tiles"] = [{"row": tile.row, "col": tile.col, "box": list(tile.box), **_result_fields(tile.result)}
                           for tile in analysis.tiles]
    if scan.warnings:
        record["warnings"] = list(scan.warnings)
    if heatmap_dir is not None and result.verdict in ("tumor", "inconclusive"):
        from inference.heatmap import occlusion_map, render_overlay

        heat = occlusion_map(cascade, analysis.image, result)
        heatmap_dir.mkdir(parents=True, exist_ok=True)
        out = heatmap_dir / (Path(path).stem + "_heatmap.png")
        blur = cascade.manifest.pipeline.heatmap["overlay_blur"]
        render_overlay(analysis.image, heat, t("heatmap.caption", "en"), blur=blur).save(out)
        record["heatmap"] = str(out)
    return record, analysis, scan.warnings


def _result_fields(result: CascadeResult) -> dict:
    return {"mri_probability": result.mri_probability, "tumor_probability": result.tumor_probability,
            "type_probabilities": result.type_probabilities, "verdict": result.verdict,
            "tumor_type": result.tumor_type, "reasons": list(result.reasons), "sequence": result.sequence,
            "sequence_confidence": result.sequence_confidence, "plane": result.plane,
            "plane_confidence": result.plane_confidence}


def run_predict(args, settings) -> int:
    models = load_models(settings)
    heatmap_dir = Path(args.heatmap) if args.heatmap else None
    successes = 0
    for path in args.files:
        record, analysis, warnings = models.run(_record, path, models.cascade, heatmap_dir)
        successes += record["ok"]
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif analysis is not None:
            print(f"== {path} ({record['latency_ms']:.0f} ms)\n{to_plain(picture_html(analysis, 'en', warnings))}\n")
        else:
            print(f"== {path}: cannot analyse: {record['error']}", file=sys.stderr)
    models.close()
    return 0 if successes else 1
