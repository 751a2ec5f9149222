"""``server.lazy_exports.lazy_exports`` on throwaway packages whose modules record when they run.

Each test writes a new top-level package (a module is imported once per process) with subpackages
laid out like scikit-learn's, and restores ``sys.meta_path`` afterwards.
"""

from __future__ import annotations

import importlib.resources
import sys
import threading
import types
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from server import lazy_exports as lazy_module
from server.lazy_exports import export_plan, lazy_exports

_names = count()

_RECORD = "import kcr_lazy_log\nkcr_lazy_log.ran.append(__name__)\n"
#: A subpackage whose ``__init__`` only re-exports, as scikit-learn's do (absolute and relative).
_PURE_INIT = '''"""Pure re-exports."""

from {top}.pure._a import A, helper
from {top}.pure._b import B as Bee
from ._c import C
from . import _d

__all__ = ["A", "Bee", "C", "helper"]
'''
_A = _RECORD + "A = 'a'\ndef helper():\n    return 'helped'\n"
_B = _RECORD + "B = 'b'\n"
# Reads another re-exported name of its own package at import time: works lazily too.
_C = _RECORD + "from {top}.pure import A\nC = A + 'c'\n"
_D = _RECORD
#: Does something besides re-exporting: runs as written.
_IMPURE_INIT = _RECORD + "from {top}.impure._e import E\nREADY = True\n"
_E = _RECORD + "E = 'e'\n"
#: Two modules that import each other's names at import time: an ImportError eagerly or lazily.
_CYCLE_INIT = "from {top}.cycle._x import X\nfrom {top}.cycle._y import Y\n"
_X = "from {top}.cycle import Y\nX = 'x'\n"
_Y = "from {top}.cycle import X\nY = 'y'\n"


@pytest.fixture
def make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """``make()``: a new top-level package name, with ``pure``, ``impure`` and ``cycle`` under it."""
    log = types.ModuleType("kcr_lazy_log")
    log.ran = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kcr_lazy_log", log)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(lazy_module, "_lazy_finders", {})
    made: list[str] = []

    def make() -> str:
        top = f"kcr_lazy_probe_{next(_names)}"
        files = {
            "__init__.py": "",
            "pure/__init__.py": _PURE_INIT,
            "pure/_a.py": _A,
            "pure/_b.py": _B,
            "pure/_c.py": _C,
            "pure/_d.py": _D,
            "pure/data.txt": "resource",
            "empty/__init__.py": '"""Nothing to re-export."""\n',
            "impure/__init__.py": _IMPURE_INIT,
            "impure/_e.py": _E,
            "cycle/__init__.py": _CYCLE_INIT,
            "cycle/_x.py": _X,
            "cycle/_y.py": _Y,
        }
        for path, text in files.items():
            (tmp_path / top / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / top / path).write_text(text.format(top=top))
        made.append(top)
        return top

    yield make
    for top in made:
        for module in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[module]


def _ran() -> list[str]:
    return sys.modules["kcr_lazy_log"].ran  # type: ignore[attr-defined,no-any-return]


def _import(name: str) -> types.ModuleType:
    __import__(name)
    return sys.modules[name]


def test_a_name_imports_only_the_submodule_it_comes_from(make: Callable[[], str]) -> None:
    top = make()
    finder = lazy_exports(top)
    pure = _import(f"{top}.pure")
    assert _ran() == [] and finder.lazy == [f"{top}.pure"]
    assert pure.__doc__ == "Pure re-exports." and pure.__all__ == ["A", "Bee", "C", "helper"]

    assert pure.Bee == "b" and _ran() == [f"{top}.pure._b"]
    assert pure.helper() == "helped" and _ran() == [f"{top}.pure._b", f"{top}.pure._a"]
    assert pure.A is sys.modules[f"{top}.pure._a"].A
    # The submodules named in the imports are attributes too, as after the eager ``__init__``.
    assert pure._d is sys.modules[f"{top}.pure._d"]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = pure.missing
    assert {"A", "Bee", "C", "_a", "_d", "helper"} <= set(dir(pure))


def test_the_package_keeps_its_real_loader(make: Callable[[], str]) -> None:
    # importlib.resources reads data files through the loader (sklearn.datasets' load_iris does).
    top = make()
    lazy_exports(top)
    pure = _import(f"{top}.pure")
    assert importlib.resources.files(pure).joinpath("data.txt").read_text() == "resource"
    assert pure.__spec__.loader is pure.__loader__ and hasattr(pure.__loader__, "get_source")
    assert _ran() == []


def test_from_imports_and_star_imports(make: Callable[[], str]) -> None:
    top = make()
    lazy_exports(top)
    namespace: dict[str, object] = {}
    exec(f"from {top}.pure import C", namespace)
    # _c's own ``from {top}.pure import A`` imported _a on the way, when it needed it.
    assert namespace["C"] == "ac" and _ran() == [f"{top}.pure._c", f"{top}.pure._a"]
    exec(f"from {top}.pure import *", namespace)
    assert namespace["Bee"] == "b" and "_d" not in namespace and f"{top}.pure._d" not in sys.modules


def test_a_package_that_does_more_runs_as_written(make: Callable[[], str]) -> None:
    top = make()
    finder = lazy_exports(top)
    impure = _import(f"{top}.impure")
    assert impure.READY and _ran() == [f"{top}.impure", f"{top}.impure._e"]
    assert finder.eager == [f"{top}.impure"] and type(impure) is types.ModuleType
    _import(f"{top}.empty")  # nothing to bind later: left as it is
    assert finder.eager[-1] == f"{top}.empty" and type(sys.modules[f"{top}.empty"]) is types.ModuleType


def test_an_import_cycle_is_an_import_error_not_a_hang(make: Callable[[], str]) -> None:
    top = make()
    lazy_exports(top)
    cycle = _import(f"{top}.cycle")
    with pytest.raises(ImportError, match="cannot import name"):
        _ = cycle.X
    # Nothing half-done was bound: the next read tries again (and fails the same way).
    assert "X" not in vars(cycle)


def test_threads_reading_names_meanwhile_get_the_same_objects(make: Callable[[], str]) -> None:
    top = make()
    lazy_exports(top)
    pure = _import(f"{top}.pure")
    seen: list[tuple[object, ...]] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        seen.append((pure.A, pure.Bee, pure.C, pure.helper))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(seen) == 4 and len(set(seen)) == 1
    assert sorted(_ran()) == sorted(f"{top}.pure.{m}" for m in ("_a", "_b", "_c"))  # each ran once


def test_only_subpackages_of_the_prefix_and_only_once(make: Callable[[], str]) -> None:
    top = make()
    assert lazy_exports(top) is lazy_exports(top)
    assert sum(getattr(f, "prefix", None) == top for f in sys.meta_path) == 1
    _import(top)
    assert type(sys.modules[top]) is types.ModuleType  # the prefix itself runs as written


@pytest.mark.parametrize(
    "source",
    [
        "from pkg._a import *\n",  # names unknown without running it
        "from other._a import A\n",  # another package: may be imported for its side effects
        "import pkg._a\n",
        "from pkg._a import A\nA.register()\n",
        "from pkg._a import A\n__all__ = make_all()\n",
    ],
)
def test_plans_only_pure_re_exports(source: str) -> None:
    assert export_plan(source, "pkg") is None


def test_plan_resolves_relative_imports() -> None:
    plan = export_plan('"""Doc."""\nfrom ._a import A as B\nfrom .sub._c import C\nfrom . import _d\n', "p.q")
    assert plan is not None and plan.docstring == "Doc." and plan.names_all is None
    assert plan.exports == {
        "B": ("p.q._a", "A"),
        "_a": ("p.q._a", None),
        "C": ("p.q.sub._c", "C"),
        "sub": ("p.q.sub", None),
        "_d": ("p.q._d", None),
    }
