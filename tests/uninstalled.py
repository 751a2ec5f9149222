"""Make installed packages look uninstalled in a child process, to test the smaller installs (the
numeric ``[sklearn]`` one without pandas, the facade's ``[ollama]`` one without numpy) with the test
environment's packages present: a ``sitecustomize`` on ``PYTHONPATH`` whose import hook raises
``ModuleNotFoundError`` with ``name`` set, exactly what a missing package raises."""

from __future__ import annotations

import os
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
