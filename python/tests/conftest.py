import itertools
import os

import pytest

import pstm

_seq = itertools.count()


@pytest.fixture
def uri():
    """A fresh shm: URI, removed afterwards."""
    u = "shm:pstm-pytest-%d-%d" % (os.getpid(), next(_seq))
    yield u
    try:
        pstm.unlink(u)
    except pstm.Error:
        pass


@pytest.fixture
def region(uri):
    r = pstm.create(uri)
    yield r
    r.close()
