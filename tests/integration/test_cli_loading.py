"""Every model-loading failure ends the process with status 1 and one clear log line, no traceback."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import joblib

from tests.procs import ROOT, free_port


def _run(model_dir: Path, *extra: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "server",
        "serve",
        "sklearn",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--http-port",
        str(free_port()),
        *extra,
    ]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _assert_one_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_missing_directory(tmp_path: Path) -> None:
    _assert_one_error(_run(tmp_path / "nope"), "does not exist", str(tmp_path / "nope"))


def test_no_model_file(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("hi")
    _assert_one_error(_run(tmp_path), "No model file", str(tmp_path), "README.txt")


def test_two_model_files(tmp_path: Path, model_root: Path) -> None:
    for name in ("a.joblib", "b.pkl"):
        (tmp_path / name).write_bytes((model_root / "iris" / "model.joblib").read_bytes())
    _assert_one_error(_run(tmp_path), "More than one model file", "a.joblib", "b.pkl")


def test_corrupt_file(tmp_path: Path, model_root: Path) -> None:
    data = (model_root / "iris" / "model.joblib").read_bytes()
    (tmp_path / "model.joblib").write_bytes(data[: len(data) // 2])
    _assert_one_error(_run(tmp_path), "Cannot load model file", "model.joblib")


def test_garbage_file(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"this is not a pickle")
    _assert_one_error(_run(tmp_path), "Cannot load model file", "model.pkl")


def test_wrong_object_type(tmp_path: Path) -> None:
    joblib.dump({"weights": [1, 2, 3]}, tmp_path / "model.joblib")
    _assert_one_error(_run(tmp_path), "holds a builtins.dict", "no predict method")


def test_unreadable_file(tmp_path: Path, model_root: Path) -> None:
    target = tmp_path / "model.joblib"
    target.write_bytes((model_root / "iris" / "model.joblib").read_bytes())
    target.chmod(0)
    # root reads anything: take away the capabilities that let it (CI runs as root).
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test unreadable files as root"
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    _assert_one_error(_run(tmp_path, prefix=prefix), "Cannot read model file", "model.joblib")


def test_symlink_escaping_model_dir(tmp_path: Path, model_root: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.joblib").symlink_to(model_root / "iris" / "model.joblib")
    _assert_one_error(_run(models), "outside the model directory")


def test_sha256_pin(tmp_path: Path, model_root: Path) -> None:
    (tmp_path / "model.joblib").write_bytes((model_root / "iris" / "model.joblib").read_bytes())
    _assert_one_error(_run(tmp_path, "--model-sha256", "0" * 64), "SHA-256 is", "expected " + "0" * 64)


def test_bad_subdirectory(tmp_path: Path, model_root: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "model.joblib").write_bytes((model_root / "iris" / "model.joblib").read_bytes())
    (bad / "model.pkl").write_bytes(pickle.dumps("not a model"))
    _assert_one_error(_run(tmp_path), "bad", "no predict method")


def test_unknown_flags_are_ignored_with_a_warning(kcr_factory, model_root: Path) -> None:  # type: ignore[no-untyped-def]
    server = kcr_factory(
        "--model_name=iris",
        f"--model_dir={model_root / 'iris'}",
        "--workers=1",
        "--enable_grpc=false",
        "--predictor_host=x",
        "--timeout-keep-alive=65",
        "--frobnicate",
    )
    assert "ignoring unknown arguments: --predictor_host=x --frobnicate" in server.log()
    import httpx

    assert httpx.get(f"{server.url}/v1/models").json() == {"models": ["iris"]}
