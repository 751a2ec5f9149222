"""Lazy exports: a package's re-exports imported one submodule at a time (see ``server.deferred_imports``
for the other two tools)."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, NamedTuple

from server.deferred_imports import _Loader

# Why: unpickling a LogisticRegression imports ``sklearn.linear_model._logistic``, which first runs
# ``sklearn/linear_model/__init__.py``: it imports every linear model (ridge, coordinate descent,
# least angle, SGD...), and those import ``model_selection``, ``metrics`` and ``preprocessing``
# whole (scipy.interpolate, scipy.spatial...). A forest's pickle does the same through
# ``sklearn/ensemble/__init__.py`` (histogram gradient boosting, stacking, bagging...). scikit-learn's
# subpackage ``__init__`` files do nothing but ``from sklearn.x._y import A, B`` and ``__all__ = [...]``,
# so the names can be bound when first read instead: ~60 ms of a LogisticRegression server's cold
# start and ~170 ms of a RandomForest's, for the same model objects. This is what the
# ``lazy_loader`` package (SPEC 1) does for packages that opt in; here it is applied from outside.


class _LazyExports(types.ModuleType):
    """A package whose ``__init__`` was replaced by its plan: each re-exported name is bound on
    first read, by importing the submodule it comes from (and only that one)."""

    def __getattr__(self, attr: str) -> Any:
        exports: dict[str, tuple[str, str | None]] = self.__dict__.get("__kcr_exports__", {})
        if attr not in exports or (attr.startswith("__") and attr.endswith("__")):
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        source, name = exports[attr]
        module = importlib.import_module(source)
        # Inside an import cycle the submodule may not have set ``name`` yet: AttributeError, which
        # ``from package import name`` reports as ImportError, as the eager ``__init__`` would.
        value = module if name is None else getattr(module, name)
        self.__dict__[attr] = value
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__.get("__kcr_exports__", {})))


class ExportPlan(NamedTuple):
    """What a re-exporting package ``__init__`` would bind, without running it."""

    docstring: str | None
    #: name -> (module it comes from, attribute of that module; None: the name is the module)
    exports: dict[str, tuple[str, str | None]]
    names_all: list[str] | None


def export_plan(source: str, package: str) -> ExportPlan | None:
    """The plan of a package ``__init__`` made only of a docstring, ``from`` imports out of the
    package's own submodules and a literal ``__all__``; None for anything else (it runs as written)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    docstring = ast.get_docstring(tree, clean=False)
    exports: dict[str, tuple[str, str | None]] = {}
    names_all: list[str] | None = None
    for index, node in enumerate(tree.body):
        if index == 0 and docstring is not None:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if not module.startswith(package + ".") and module != package:
                return None  # imports from elsewhere may be there for their side effects
            for alias in node.names:
                if alias.name == "*":
                    return None
                bound = alias.asname or alias.name
                if module == package:  # ``from . import sub``
                    exports[bound] = (f"{package}.{alias.name}", None)
                    continue
                exports[bound] = (module, alias.name)
                # The eager ``__init__`` leaves the submodule bound as an attribute too.
                top = module[len(package) + 1 :].split(".")[0]
                exports.setdefault(top, (f"{package}.{top}", None))
            continue
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "__all__"
        ):
            try:
                names_all = list(ast.literal_eval(node.value))
            except ValueError:
                return None
            continue
        return None
    return ExportPlan(docstring, exports, names_all)


class _LazyExportsLoader(importlib.abc.Loader):
    def __init__(self, real: _Loader, plan: ExportPlan) -> None:
        self.real = real
        self.plan = plan

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return _LazyExports(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        docstring, exports, names_all = self.plan
        module.__doc__ = docstring
        module.__dict__["__kcr_exports__"] = exports
        if names_all is not None:
            module.__all__ = names_all  # type: ignore[attr-defined]  # a module's own attribute
        # For everything that asks the loader (importlib.resources' reader, inspect's source...).
        module.__loader__ = self.real
        if module.__spec__ is not None:
            module.__spec__.loader = self.real


class _LazyExportsFinder:
    """On ``sys.meta_path`` for good: packages under ``prefix`` whose ``__init__`` passes
    ``export_plan`` are created as ``_LazyExports``; every other module imports as usual."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        #: Packages made lazy, and packages left as they are, in import order (tests, debugging).
        self.lazy: list[str] = []
        self.eager: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith(self.prefix + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.submodule_search_locations is None or spec.loader is None:
            return None
        try:
            source = spec.loader.get_source(fullname)  # type: ignore[attr-defined]  # source loaders
        except (AttributeError, ImportError, OSError):
            source = None
        plan = export_plan(source, fullname) if source else None
        if plan is None or not plan.exports:  # nothing to bind later: nothing to gain
            self.eager.append(fullname)
            return None
        self.lazy.append(fullname)
        spec.loader = _LazyExportsLoader(spec.loader, plan)
        return spec


_lazy_finders: dict[str, _LazyExportsFinder] = {}


def lazy_exports(prefix: str) -> _LazyExportsFinder:
    """From now on, subpackages of ``prefix`` (not ``prefix`` itself) not yet imported whose
    ``__init__`` only re-exports names from their own submodules bind each name when it is first
    read, importing only the submodule it comes from. Returns the (one per prefix) finder."""
    finder = _lazy_finders.get(prefix)
    if finder is None:
        finder = _lazy_finders[prefix] = _LazyExportsFinder(prefix)
        sys.meta_path.insert(0, finder)
    return finder
