"""The `saveyourlife` console script: predict/ask JSON contracts, exit codes, train-extra hint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, jpeg_bytes, landscape_photo, pick

PREDICT_KEYS = {"file", "ok", "error", "mri_probability", "tumor_probability", "type_probabilities",
                "verdict", "tumor_type", "sequence", "plane", "latency_ms"}
ASK_KEYS = {"text", "lang", "intent", "topic", "question", "kind", "red_flag", "confidence", "answer"}


def cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("saveyourlife", path=str(Path(sys.executable).parent)) or "saveyourlife"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=180, cwd=REPO,
                          env={**os.environ, **(env or {})})


def test_predict_json_follows_the_contract_on_real_scans_and_bad_files(tmp_path, manifest_rows):
    scans = pick(manifest_rows, 2, source="kaggle4", label="pituitary") + pick(manifest_rows, 1, kind="photo")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(jpeg_bytes(landscape_photo())[:500])
    missing = tmp_path / "missing.png"
    out = cli("predict", "--json", *map(str, scans), str(broken), str(missing))
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in records] == [*map(str, scans), str(broken), str(missing)]
    for r in records:
        assert PREDICT_KEYS <= set(r)
    for r in records[:3]:
        assert r["ok"] is True and r["error"] is None
        assert set(r["type_probabilities"]) == {"glioma", "meningioma", "notumor", "pituitary"}
        assert 0.0 <= r["mri_probability"] <= 1.0 and 0.0 <= r["tumor_probability"] <= 1.0
        assert r["verdict"] in {"not_mri", "no_tumor", "tumor", "inconclusive"}
        assert r["latency_ms"] < 1000
        assert r["sequence"] in {"t1", "t1c", "t2", "flair", None} and 0.0 <= r["sequence_confidence"] <= 1.0
        assert r["plane"] in {"axial", "coronal", "sagittal", None}
        assert r["verdict"] != "tumor" or r["tumor_type"] is not None or r["reasons"]  # an unnamed type says why
    pituitary = records[:2]
    assert all(r["verdict"] in ("tumor", "inconclusive") for r in pituitary)  # abstaining is allowed, a miss is not
    assert all(r["tumor_type"] in ("pituitary", None) for r in pituitary)
    assert records[2]["verdict"] == "not_mri"
    assert records[3]["ok"] is False and "could not be read" in records[3]["error"]
    assert records[4]["ok"] is False and records[4]["error"]


def test_predict_exits_non_zero_only_when_no_file_succeeded(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    out = cli("predict", str(empty))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "empty" in out.stderr


def test_predict_prints_a_readable_report_with_the_notice(tmp_path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(jpeg_bytes(landscape_photo()))
    out = cli("predict", str(photo))
    assert out.returncode == 0
    assert "not a diagnosis" in out.stdout and "Brain MRI" in out.stdout


def test_ask_json_reads_questions_from_stdin():
    out = cli("ask", "--json", stdin="¿Qué es un glioma?\nwhat is a meningioma\n\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert ASK_KEYS <= set(row)
    assert rows[0]["lang"] == "es" and (rows[0]["topic"], rows[0]["question"]) == ("glioma", "what_is")
    assert rows[1]["lang"] == "en" and (rows[1]["topic"], rows[1]["question"]) == ("meningioma", "what_is")
    assert rows[2]["intent"] is None and rows[2]["answer"]


def test_ask_with_lang_and_text_arguments():
    out = cli("ask", "--json", "--lang", "en", "hola")
    row = json.loads(out.stdout)
    assert row["lang"] == "en" and row["text"] == "hola"


def test_console_chat_uses_the_same_router(tmp_path, manifest_rows):
    scan = pick(manifest_rows, 1, source="kaggle4", label="glioma")[0]
    db = tmp_path / "console.db"
    out = cli("chat", stdin=f"que es un meningioma\n/photo {scan}\n/photo /nonexistent.png\n/quit\n",
              env={"TELEGRAM_BOT_TOKEN": "", "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert out.returncode == 0, out.stderr
    assert "meningioma" in out.stdout.lower()
    assert "No es un diagnóstico" in out.stdout or "no es un diagnóstico" in out.stdout.lower()
    assert "No encuentro ese archivo" in out.stdout


def test_train_without_tensorflow_explains_how_to_install_it(tmp_path):
    # A Python that cannot import tensorflow: shadow it with a module that raises ImportError.
    shadow = tmp_path / "tensorflow.py"
    shadow.write_text("raise ImportError('not installed')\n")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "train", "typer"], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert out.returncode == 2
    assert "pip install -e '.[train]'" in out.stderr
