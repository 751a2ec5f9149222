"""Import a library while an optional dependency it probes for is hidden, so that it is not imported.

Why: scikit-learn (1.9) imports pandas at import time only because ``sklearn/utils/fixes.py`` does
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

import importlib.abc
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib.machinery import ModuleSpec
from types import ModuleType


class _HidingFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: refuses to find ``names`` (and their submodules) for one thread."""

    def __init__(self, names: frozenset[str], thread_id: int) -> None:
        self.names = names
        self.thread_id = thread_id
        #: Every refused import, for tests and debugging.
        self.refused: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names and threading.get_ident() == self.thread_id:
            self.refused.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (import deferred)", name=fullname)
        return None  # let the next finder on sys.meta_path find it


@contextmanager
def hidden(*names: str) -> Iterator[_HidingFinder | None]:
    """Within the block, top-level packages ``names`` that are not yet imported fail to import.

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
