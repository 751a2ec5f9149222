"""The fingerprint of pyproject.toml's dependencies that each lock file records: a lock whose stamp
differs was generated from other dependencies (tests/unit/test_locks.py fails: run ``make lock``)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stamp() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {"dependencies": project["dependencies"], "extras": project["optional-dependencies"]}
    image = (ROOT / "requirements" / "image.in").read_text()
    return hashlib.sha256(json.dumps([deps, image], sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    print(stamp())
