"""Make installed packages look uninstalled in a child process, to test the smaller installs (the
numeric ``[sklearn]`` one without pandas, the facade's ``[ollama]`` one without numpy) with the test
environment's packages present: a ``sitecustomize`` on ``PYTHONPATH`` whose import hook raises
``ModuleNotFoundError`` with ``name`` set, exactly what a missing package raises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_HOOK = textwrap.dedent(
    """
    import sys

    BLOCKED = {names!r}

    class Uninstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Uninstalled())
    """
)


def uninstalled_env(directory: Path, *packages: str) -> dict[str, str]:
    """Environment additions under which importing any of ``packages`` fails as if not installed."""
    (directory / "sitecustomize.py").write_text(_HOOK.format(names=sorted(packages)))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))}


def missing_in_child(env: dict[str, str], *packages: str) -> list[str]:
    """Which of ``packages`` a child process started with ``env`` finds uninstalled (by the
    ``name`` its ``ModuleNotFoundError`` carries): checks the hook itself."""
    probe = (
        "import importlib\n"
        f"for name in {list(packages)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        print(e.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split()
