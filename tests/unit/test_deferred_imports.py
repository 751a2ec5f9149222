"""``server.deferred_imports.defer`` on a throwaway package whose code records when it runs.

Each test writes its own package (a module is imported once per process) and restores
``sys.meta_path`` afterwards, so nothing deferred here outlives the test.
"""

from __future__ import annotations

import copy
import pickle
import sys
import threading
import types
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from server import deferred_imports
from server.deferred_imports import defer, is_deferred, load_deferred

_names = count()

_INIT = """
import time
import kcr_defer_log
kcr_defer_log.ran.append(__name__)
time.sleep({sleep})
VALUE = 42
def twice(x):
    return 2 * x
class Base:
    pass
__all__ = ["VALUE", "twice", "Base"]
"""
# Reads its parent at import time: fails unless the parent's code ran first.
_SUB = """
import kcr_defer_log
from {parent} import VALUE
kcr_defer_log.ran.append(__name__)
DOUBLE = 2 * VALUE
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``make(sleep=0)``: a new package name with an ``__init__`` (see ``_INIT``) and a ``sub``."""
    log = types.ModuleType("kcr_defer_log")
    log.ran = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kcr_defer_log", log)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(deferred_imports, "_finders", {})
    made: list[str] = []

    def make(sleep: float = 0) -> str:
        name = f"kcr_defer_probe_{next(_names)}"
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(_INIT.format(sleep=sleep))
        (tmp_path / name / "sub.py").write_text(_SUB.format(parent=name))
        made.append(name)
        return name

    yield make
    for name in made:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def _ran() -> list[str]:
    return sys.modules["kcr_defer_log"].ran  # type: ignore[attr-defined,no-any-return]


def test_import_does_not_run_the_module_until_an_attribute_is_read(package: Callable[..., str]) -> None:
    name = package()
    defer(name)
    module = __import__(name)
    assert _ran() == [] and is_deferred(name)
    # Metadata the import system and tools read does not run it.
    assert module.__name__ == name and module.__spec__.name == name and module.__path__
    assert __import__(name) is module and _ran() == []  # a second import statement neither

    assert module.VALUE == 42
    assert _ran() == [name] and not is_deferred(name)
    assert type(module) is types.ModuleType and sys.modules[name] is module
    assert module.twice(2) == 4 and _ran() == [name]  # ran once


def test_bound_names_are_forwarders_until_called(package: Callable[..., str]) -> None:
    name = package()
    defer(name, bound={"twice"})
    namespace: dict[str, object] = {}
    exec(f"from {name} import twice", namespace)
    assert _ran() == [] and "deferred" in repr(namespace["twice"])
    assert namespace["twice"](21) == 42  # type: ignore[operator]
    assert _ran() == [name]
    exec(f"from {name} import twice as again", namespace)
    assert namespace["again"] is sys.modules[name].twice  # once run, the real function


def test_other_names_run_the_module_when_imported_from_it(package: Callable[..., str]) -> None:
    name = package()
    defer(name, bound={"twice"})
    namespace: dict[str, object] = {}
    exec(f"from {name} import VALUE", namespace)
    assert namespace["VALUE"] == 42 and _ran() == [name]


def test_star_import_uses_the_real_all(package: Callable[..., str]) -> None:
    name = package()
    defer(name)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert namespace["VALUE"] == 42 and "twice" in namespace and _ran() == [name]


def test_importing_a_submodule_runs_the_parent_first(package: Callable[..., str]) -> None:
    name = package()
    defer(name)
    __import__(name)
    namespace: dict[str, object] = {}
    exec(f"import {name}.sub as sub", namespace)
    assert _ran() == [name, f"{name}.sub"]
    assert namespace["sub"].DOUBLE == 84  # type: ignore[attr-defined]


def test_threads_reading_it_meanwhile_wait_for_it_to_run(package: Callable[..., str]) -> None:
    name = package(sleep=0.3)
    defer(name)
    module = __import__(name)
    seen: list[object] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        seen.append(module.VALUE)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == [42] * 4 and _ran() == [name]


def test_load_deferred_and_already_imported(package: Callable[..., str]) -> None:
    name = package()
    defer(name)
    __import__(name)
    load_deferred(name)
    assert _ran() == [name] and not is_deferred(name)
    load_deferred(name)  # no-op now
    other = package()
    __import__(other)
    defer(other)  # already imported: nothing to defer
    assert not is_deferred(other) and _ran() == [name, other]


def test_forwarders_stand_in_for_classes_in_checks_subclasses_copies(package: Callable[..., str]) -> None:
    name = package()
    defer(name, bound={"twice", "Base"})
    namespace: dict[str, Any] = {}
    exec(f"from {name} import Base, twice", namespace)
    base, twice = namespace["Base"], namespace["twice"]
    assert _ran() == []

    class Sub(base):  # PEP 560: the real class becomes the base, which runs the module
        pass

    real = sys.modules[name].Base
    assert _ran() == [name] and Sub.__mro__[1] is real
    assert isinstance(Sub(), base) and issubclass(Sub, base) and not isinstance(1, base)
    assert copy.copy(twice) is copy.deepcopy(twice) is sys.modules[name].twice
    assert pickle.loads(pickle.dumps(base)) is real


def test_isinstance_against_a_forwarder_runs_the_module(package: Callable[..., str]) -> None:
    name = package()
    defer(name, bound={"Base"})
    namespace: dict[str, Any] = {}
    exec(f"from {name} import Base", namespace)
    assert not isinstance(object(), namespace["Base"]) and _ran() == [name]
