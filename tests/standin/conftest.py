import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.ollama_standin.process import start_standin  # noqa: E402


@pytest.fixture(scope="module")
def standin():
    handle = start_standin()
    try:
        yield handle
    finally:
        handle.stop()
