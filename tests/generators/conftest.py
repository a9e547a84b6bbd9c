"""Generator tests run their tiny networks on one thread: on a busy 2-core machine two OpenMP
threads per tiny convolution spend most of their time waiting for each other."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every generator test uses the shared ``one_thread`` fixture of tests/conftest.py."""
