"""Keep what a library imports but a served model may never use out of the process until it is used.

Three tools, for three ways a library imports something it does not need yet:

- ``hidden(name)``: import the library while an optional dependency it merely probes for looks
  absent (pandas, below);
- ``defer(name, bound)``: a module the library imports for real, but uses only inside functions,
  is imported as a stand-in whose code runs on first use (scipy.stats; see the second part);
- ``lazy_exports(prefix)`` (``server.lazy_exports``): a package whose ``__init__`` only re-exports
  its submodules' names imports each submodule when one of its names is first read
  (scikit-learn's subpackages).

``hidden``. Why: scikit-learn (1.9) imports pandas at import time only because ``sklearn/utils/fixes.py`` does
``try: import pandas as pd / except ImportError: pd = None`` at module level, and nothing uses that
``pd``. That costs a sklearn server ~0.2 s of cold start and ~30 MB of RSS, even for a model trained
on numpy arrays that never sees a DataFrame. Everywhere else sklearn imports pandas inside the
function that needs it, or asks ``sys.modules`` whether pandas is loaded ("not loaded" = "X is not a
DataFrame"), so it keeps working when pandas is imported later: by our codec for a records request,
or by the runtime itself for a model that needs DataFrames.

``hidden("pandas")`` makes ``import pandas`` (and ``pandas.*``) raise ``ModuleNotFoundError`` inside
the ``with`` block, as if it were not installed, and only:

- in the thread that entered the block (another thread importing pandas meanwhile is unaffected);
- if pandas is not imported yet (once it is, hiding it would achieve nothing).

Import only the library inside the block, never user data: unpickling a model must happen after the
block, because a pickle may legitimately need pandas.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
import types
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

logger = logging.getLogger("kcr.imports")


#: What a module spec's loader is (``exec_module`` is all we call).
_Loader = importlib.abc.Loader


class _HidingFinder:
    """First on ``sys.meta_path``: refuses to find ``names`` (and their submodules) for one thread."""

    def __init__(self, names: frozenset[str], thread_id: int) -> None:
        self.names = names
        self.thread_id = thread_id
        #: Every refused import, for tests and debugging.
        self.refused: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        hides = any(fullname == name or fullname.startswith(name + ".") for name in self.names)
        if hides and threading.get_ident() == self.thread_id:
            self.refused.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (import deferred)", name=fullname)
        return None  # let the next finder on sys.meta_path find it


@contextmanager
def hidden(*names: str) -> Iterator[_HidingFinder | None]:
    """Within the block, modules ``names`` (and their submodules) not yet imported fail to import.

    Yields the finder (its ``refused`` lists what was refused), or None when every name was already
    imported and nothing is hidden.
    """
    missing = frozenset(name for name in names if name not in sys.modules)
    if not missing:
        yield None
        return
    finder = _HidingFinder(missing, threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        with suppress(ValueError):  # someone replaced sys.meta_path meanwhile: nothing to undo
            sys.meta_path.remove(finder)


# --- deferred: a module that is imported for real only when first used --------------------------
#
# Why: scikit-learn (1.9) imports ``scipy.stats`` at import time (``utils/fixes.py``,
# ``preprocessing/_data.py``) and binds a few of its functions by name (``from scipy.stats import
# gmean`` in ``_loss/link.py``, ``rankdata`` in ``metrics/_ranking.py``, ...), but calls them only
# inside functions that fitting, scoring or a few transformers use. Importing scipy.stats (with the
# scipy.optimize / integrate / ndimage parts it pulls in) is ~0.2 s of a sklearn server's start and
# ~17 MB of its RSS, for a LogisticRegression or a forest that never touches it.


class _DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module whose code has not run yet.

    Its metadata (``__spec__``, ``__path__``, ``__file__``...) is the real module's, so imports of
    its submodules work. Reading any other attribute runs the real module's code into this very
    object (every holder of it then sees the real module) and returns the attribute: the same
    object, a one-time delay. ``importlib.util.LazyLoader`` does the same but triggers on any
    attribute read, including the ``__spec__`` that every ``import`` statement reads, so it never
    stays lazy for a module that is imported twice.
    """

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__") and attr != "__all__":
            # Metadata the import system probes for (``__path__`` before it sets it...): a plain
            # module without it answers AttributeError too. ``__all__`` is the module's own.
            raise AttributeError(attr)
        state: _DeferredState = self.__dict__["__kcr_deferred__"]
        if state.bound and attr in state.bound and not state.loaded:
            # ``from module import attr`` while still deferred: a forwarder, not a load.
            return _Forwarder(self, attr)
        state.load(self)
        return getattr(self, attr)  # now a plain module: its own lookup, PEP 562 included


class _DeferredState:
    def __init__(self, loader: _Loader, bound: frozenset[str]) -> None:
        self.loader = loader
        self.bound = bound
        self.loaded = False
        self.lock = threading.RLock()
        self.loading_thread: int | None = None

    def load(self, module: _DeferredModule) -> None:
        """Run the real module's code into ``module``, once; other threads wait for it."""
        if self.loading_thread == threading.get_ident():
            # The module's own code (or a submodule's) is reading an attribute it has not set
            # yet: exactly what a plain import would answer while the module is initialising.
            raise AttributeError(module.__name__)
        with self.lock:
            if self.loaded:
                return
            self.loading_thread = threading.get_ident()
            spec = module.__spec__
            assert spec is not None  # a deferred module always has its spec
            try:
                module.__loader__ = spec.loader = self.loader
                spec._initializing = True  # type: ignore[attr-defined]  # as importlib does meanwhile
                self.loader.exec_module(module)
                self.loaded = True
                module.__class__ = types.ModuleType  # type: ignore[assignment]  # back to a plain module
                module.__dict__.pop("__kcr_deferred__", None)
                logger.debug("deferred import of %s done", module.__name__)
            finally:
                spec._initializing = False  # type: ignore[attr-defined]
                self.loading_thread = None


class _Forwarder:
    """What ``from deferred import name`` binds: calls, attribute reads, ``isinstance``/``issubclass``
    checks against it, subclassing it (PEP 560's ``__mro_entries__``), copying and pickling it all
    go to the real object, running the module first if it has not run yet.

    What it cannot stand in for: an identity test (``x is name``, ``type(x) is name``) and an
    ``except name:`` clause, which need the real object. So only functions and classes that are
    used as above are bound (``DEFERRED_MODULES``), never exception classes."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: types.ModuleType, name: str) -> None:
        self._module = module
        self._name = name

    def _target(self) -> Any:
        module = self._module
        if isinstance(module, _DeferredModule):  # still deferred: reading the name gives a forwarder
            module.__dict__["__kcr_deferred__"].load(module)
        return getattr(module, self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._target())

    def __subclasscheck__(self, cls: type) -> bool:
        return issubclass(cls, self._target())

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self._target(),)

    def __copy__(self) -> Any:
        return self._target()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self._target()  # as deepcopy treats functions and classes: the object itself

    def __reduce__(self) -> tuple[Any, ...]:
        return (_resolve, (self._module.__name__, self._name))

    def __repr__(self) -> str:
        return f"<deferred {self._module.__name__}.{self._name}>"


def _resolve(module: str, name: str) -> Any:
    """What a pickled forwarder unpickles to: the real object."""
    return getattr(importlib.import_module(module), name)


class _DeferringFinder:
    """On ``sys.meta_path`` for good: the first import of ``name`` gets a deferred module; an import
    of one of its submodules runs it first, so a package's ``__init__`` still runs before its
    submodules (``scipy.stats._distn_infrastructure`` in a pickle, say), as in a plain import."""

    def __init__(self, name: str, bound: frozenset[str]) -> None:
        self.name = name
        self.bound = bound
        self.module: _DeferredModule | None = None
        self._real: _Loader | None = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == self.name and self.module is None:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec  # not a plain module on the path: import it as usual
            self._real = spec.loader
            spec.loader = self  # type: ignore[assignment]
            return spec
        if fullname.startswith(self.name + ".") and isinstance(self.module, _DeferredModule):
            with suppress(AttributeError):  # AttributeError: the parent's own code imports it
                self.module.__dict__["__kcr_deferred__"].load(self.module)
        return None  # the next finder on sys.meta_path finds it

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        assert self._real is not None
        module = _DeferredModule(spec.name)
        module.__dict__["__kcr_deferred__"] = _DeferredState(self._real, self.bound)
        self.module = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing runs now; the module's first attribute read runs it."""
        module.__loader__ = self._real


_finders: dict[str, _DeferringFinder] = {}


def defer(name: str, bound: Iterable[str] = ()) -> None:
    """From now on, the first ``import name`` (in any thread) gives a module whose code runs on its
    first attribute read, and ``from name import x`` for ``x`` in ``bound`` binds a forwarder
    instead of reading ``x``. No-op if ``name`` is already imported or deferred.

    Only for a module whose importers merely bind it, or bind ``bound`` names, at import time and
    use it later: anything else they read from it at import time just runs it then.
    """
    if name in sys.modules or name in _finders:
        return
    finder = _DeferringFinder(name, frozenset(bound))
    _finders[name] = finder
    sys.meta_path.insert(0, finder)


def is_deferred(name: str) -> bool:
    """Whether ``sys.modules[name]`` is a deferred module whose code has not run yet."""
    return isinstance(sys.modules.get(name), _DeferredModule)


def load_deferred(name: str) -> None:
    """Run a deferred module's code now (no-op if it is not deferred)."""
    module = sys.modules.get(name)
    if isinstance(module, _DeferredModule):
        module.__dict__["__kcr_deferred__"].load(module)
