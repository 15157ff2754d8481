"""`saveyourlife predict [--json] [--heatmap DIR] FILE...`"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from inference.cascade import Cascade
from inference.errors import InputRejected
from inference.manifest import ManifestError
from inference.scan import load_scan

from ..messages import t
from ..render import result_html, to_plain


def _record(path: str, cascade: Cascade, heatmap_dir: Path | None) -> dict:
    started = time.perf_counter()
    record = {"file": path, "ok": False, "error": None, "mri_probability": None, "tumor_probability": None,
              "type_probabilities": None, "verdict": None, "tumor_type": None, "latency_ms": None}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        record["error"] = f"cannot read the file ({exc.strerror or type(exc).__name__})"
        return record
    try:
        scan = load_scan(data, Path(path).name)
        result = cascade.predict_image(scan.image, started)
    except InputRejected as exc:
        record["error"] = exc.detail
        record["error_code"] = exc.code
        return record
    record.update(ok=True, mri_probability=result.mri_probability, tumor_probability=result.tumor_probability,
                  type_probabilities=result.type_probabilities, verdict=result.verdict, tumor_type=result.tumor_type,
                  reasons=list(result.reasons), latency_ms=round((time.perf_counter() - started) * 1000, 2))
    if scan.warnings:
        record["warnings"] = list(scan.warnings)
    if heatmap_dir is not None and result.verdict in ("tumor", "inconclusive"):
        from inference.heatmap import occlusion_map, render_overlay

        heat = occlusion_map(cascade, scan.image, result)
        heatmap_dir.mkdir(parents=True, exist_ok=True)
        out = heatmap_dir / (Path(path).stem + "_heatmap.png")
        render_overlay(scan.image, heat, t("heatmap.caption", "en")).save(out)
        record["heatmap"] = str(out)
    return record


def run_predict(args, settings) -> int:
    try:
        cascade = Cascade.from_dir(settings.models_dir)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    heatmap_dir = Path(args.heatmap) if args.heatmap else None
    successes = 0
    for path in args.files:
        record = _record(path, cascade, heatmap_dir)
        successes += record["ok"]
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif record["ok"]:
            from inference.cascade import CascadeResult

            result = CascadeResult(record["mri_probability"], record["tumor_probability"], record["type_probabilities"],
                                   record["verdict"], record["tumor_type"], tuple(record["reasons"]), record["latency_ms"])
            print(f"== {path} ({record['latency_ms']:.0f} ms)\n{to_plain(result_html(result, 'en', tuple(record.get('warnings', ()))))}\n")
        else:
            print(f"== {path}: cannot analyse: {record['error']}", file=sys.stderr)
    return 0 if successes else 1
