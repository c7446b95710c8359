import os

import pytest

from matcalc.registry import load

os.environ.setdefault("COLUMNS", "100")


@pytest.fixture(scope="session")
def table():
    return load()
