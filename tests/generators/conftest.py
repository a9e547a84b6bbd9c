"""Generator tests run their tiny networks on one thread: on a busy 2-core machine two OpenMP
threads per tiny convolution spend most of their time waiting for each other."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
