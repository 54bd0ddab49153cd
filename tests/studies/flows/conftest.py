"""One intra-op thread for these tiny networks (as the study itself runs): on a loaded 2-core
machine, two threads made a Hessian-vector product ~10x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
