"""The layout's rules (docs/development.md), checked: import contracts, no cycles, small modules,
empty wing ``__init__`` files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "runtimes")
MAX_LINES = 400


def test_import_contracts_hold() -> None:
    """The contracts in pyproject.toml (``[tool.importlinter]``): layers, runtimes free of HTTP and
    protocols, numpy only in the KServe wing, FastAPI only in the docs app."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported.split(".")[0] not in PACKAGES or imported.startswith(importer + "."):
                continue
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None and not importer.startswith(imported + "."):
                cycles.append(" -> ".join([importer, *back]))
    assert cycles == []


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_small(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if "_pb2" not in p.name  # generated from a .proto (scripts/gen_proto.sh)
        and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_wing_init_files_are_empty() -> None:
    """Importing ``server.kserve.probes`` must not import the codec (numpy), nor ``server.web`` a wing:
    a package ``__init__`` that re-exports would."""
    inits = [ROOT / "server" / wing / "__init__.py" for wing in ("kserve", "openai", "anthropic", "web")]
    assert {str(p.relative_to(ROOT)): p.read_text() for p in inits} == {
        str(p.relative_to(ROOT)): "" for p in inits
    }
