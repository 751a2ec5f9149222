"""The lock files are generated from today's pyproject.toml (``make lock``), and they pin what they
must: every package by hash, and the scikit-learn stack the deferred imports were verified on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ["test", "sklearn", "ollama"]


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / f"{lock}.lock").read_text()
    pins = {}
    for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^ ;\\\n]+)( ;[^\\\n]*)?", text, re.M):
        marker = m.group(3) or ""
        if "python_full_version >= '3.12'" not in marker:  # the images run Python 3.11
            pins[m.group(1).lower()] = m.group(2)
    return pins


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_was_generated_from_this_pyproject(lock: str) -> None:
    stamp = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock_stamp.py")], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    header = (ROOT / "requirements" / f"{lock}.lock").read_text().splitlines()[1]
    assert header == f"# pyproject-deps-sha256: {stamp}", "pyproject.toml changed: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_package_is_pinned_by_hash(lock: str) -> None:
    text = (ROOT / "requirements" / f"{lock}.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert entries and all("--hash=sha256:" in e for e in entries if e.strip() and not e.startswith("#"))


def test_the_images_ship_the_versions_the_tests_verified() -> None:
    from runtimes.sklearn_imports import VERIFIED_ON

    test, image = _pins("test"), _pins("sklearn")
    for name, version in VERIFIED_ON.items():
        assert image[name] == test[name] == version, name
    # Every other package too (dumb-init is the images' own: requirements/image.in).
    assert {k: v for k, v in image.items() if test.get(k) != v and k != "dumb-init"} == {}
