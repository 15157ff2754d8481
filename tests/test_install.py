"""Installed as a user installs it: a wheel that works from any folder, and setup problems that exit 2 in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import REPO, jpeg_bytes, landscape_photo, models_copy

KNOWLEDGE_DIR = REPO / "bot" / "knowledge"
EXE = shutil.which("saveyourlife", path=str(Path(sys.executable).parent)) or "saveyourlife"


def run(exe: str, *args: str, cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **env})


def error_lines(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


# ---- setup problems: exit code 2 and one clear line -------------------------------------------------


def _models_with_a_changed_file(tmp: Path) -> dict[str, str]:
    copy = models_copy(tmp)
    blob = bytearray((copy / "typer.tflite").read_bytes())
    blob[-1] ^= 0xFF
    (copy / "typer.tflite").write_bytes(bytes(blob))
    return {"MODELS_DIR": str(copy)}


def _models_with_an_edited_manifest(edit: Callable[[dict], object]) -> Callable[[Path], dict[str, str]]:
    def make(tmp: Path) -> dict[str, str]:
        return {"MODELS_DIR": str(models_copy(tmp, edit))}
    return make


def _knowledge_with(tmp: Path, name: str, content: str | None) -> dict[str, str]:
    copy = tmp / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    if content is None:
        (copy / name).unlink()
    else:
        (copy / name).write_text(content, encoding="utf-8")
    return {"KNOWLEDGE_DIR": str(copy)}


SETUP_PROBLEMS = {
    # case: (environment, command, words the one line must contain)
    "wrong MODELS_DIR": (lambda tmp: {"MODELS_DIR": str(tmp / "nowhere")}, ("ask", "hola"), ("nowhere", "MODELS_DIR")),
    "checksum mismatch": (_models_with_a_changed_file, ("predict", "x.png"), ("typer.tflite", "sha256")),
    "unknown manifest field": (
        _models_with_an_edited_manifest(lambda m: m["models"]["typer"].update(temperatur=1.0)),
        ("predict", "x.png"), ("manifest.json", "models.typer.temperatur", "unknown field")),
    "missing pipeline limit": (
        _models_with_an_edited_manifest(lambda m: m["pipeline"]["quality"].pop("min_sharpness")),
        ("ask", "hola"), ("manifest.json", "pipeline.quality.min_sharpness", "missing field")),
    "malformed red flags": (lambda tmp: _knowledge_with(tmp, "red_flags.json", '{"acute": ['),
                            ("ask", "hola"), ("red_flags.json", "not valid JSON")),
    "missing phrasings": (lambda tmp: _knowledge_with(tmp, "questions.json", None), ("ask", "hola"), ("questions.json",)),
    "topic file without a language": (
        lambda tmp: _knowledge_with(tmp, "topics/glioma.json", json.dumps({"topic": "glioma"})),
        ("ask", "hola"), ("glioma.json",)),
    "unknown database scheme": (lambda tmp: {"DATABASE_URL": "nonsense://somewhere"}, ("chat",), ("DATABASE_URL",)),
    "not a database URL": (lambda tmp: {"DATABASE_URL": "my database"}, ("chat",), ("DATABASE_URL",)),
    "a setting that is not a number": (lambda tmp: {"WEBHOOK_PORT": "eighty"}, ("ask", "hola"), ("WEBHOOK_PORT",)),
}


@pytest.mark.parametrize("case", SETUP_PROBLEMS, ids=list(SETUP_PROBLEMS))
def test_a_setup_problem_exits_2_with_one_line_naming_it(tmp_path, case):
    make_env, command, words = SETUP_PROBLEMS[case]
    env = {"HOME": str(tmp_path / "home"), "TELEGRAM_BOT_TOKEN": "", **make_env(tmp_path)}
    out = run(EXE, *command, cwd=tmp_path, env=env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = error_lines(out)
    assert len(lines) == 1, out.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_a_database_password_never_reaches_the_error_line(tmp_path):
    env = {"HOME": str(tmp_path), "DATABASE_URL": "postgresql+nodriver://ana:s3cret-pw@db.example/bot"}
    out = run(EXE, "chat", cwd=tmp_path, env=env)
    assert out.returncode == 2 and "s3cret-pw" not in out.stderr + out.stdout


# ---- the wheel -------------------------------------------------------------------------------------


def _source_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [f for f in listed if (REPO / f).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install <wheel>` into a fresh venv, the wheel built from the repository's files alone."""
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to list the repository's files")
    root = tmp_path_factory.mktemp("wheel")
    tree = root / "src"
    files = _source_files()
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(tree)],
                   check=True, capture_output=True, text=True, timeout=600)
    wheel = next((root / "dist").glob("saveyourlife-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True,
                   text=True, timeout=900)
    return wheel, venv, files


def test_the_wheel_carries_every_module_and_data_file(installed):
    wheel, _, files = installed
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f for f in files if f.split("/")[0] in ("bot", "inference", "training") and not f.endswith(".md")}
    wanted |= {"saveyourlife_models/" + f.split("/", 1)[1] for f in files
               if f.startswith("models/") and f.count("/") == 1 and f.endswith((".tflite", ".json", ".py"))}
    assert wanted - inside == set()
    assert not any(name.startswith(("models/", "tests/", "bench/")) for name in inside)


def test_the_installed_wheel_predicts_and_answers_from_an_empty_folder(installed, tmp_path, manifest_rows):
    _, venv, _ = installed
    exe = str(venv / "bin" / "saveyourlife")
    from .conftest import pick

    scan = pick(manifest_rows, 1, source="kaggle4", label="pituitary")[0]
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(jpeg_bytes(landscape_photo()))
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "home" / "data"), "PYTHONPATH": "",
           "MODELS_DIR": "", "KNOWLEDGE_DIR": "", "DATABASE_URL": "", "TELEGRAM_BOT_TOKEN": ""}
    env = {k: v for k, v in env.items() if v} | {"PYTHONNOUSERSITE": "1"}
    clean = {k: v for k, v in os.environ.items() if k not in ("MODELS_DIR", "KNOWLEDGE_DIR", "DATABASE_URL", "PYTHONPATH")}

    def cli(*args, stdin=""):
        return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=300, cwd=folder,
                              env={**clean, **env})

    predicted = cli("predict", "--json", str(scan), str(photo))
    assert predicted.returncode == 0, predicted.stderr
    records = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert records[0]["ok"] and records[0]["verdict"] in ("tumor", "inconclusive")
    assert records[1]["verdict"] == "not_mri"

    asked = cli("ask", "--json", "what is a meningioma")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert (answer["lang"], answer["topic"], answer["question"]) == ("en", "meningioma", "what_is")

    chatted = cli("chat", stdin="¿qué es un glioma?\n/quit\n")
    assert chatted.returncode == 0, chatted.stderr
    assert "glioma" in chatted.stdout.lower()
    # The conversation went to the user's data folder, not into the package or the working folder.
    assert list((tmp_path / "home" / "data" / "saveyourlife").glob("*.db"))
    assert not list(venv.rglob("*.db")) and list(folder.iterdir()) == []
