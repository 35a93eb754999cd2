"""Transaction.set_name (pstm_tx_name): named transactions of two real
processes that conflict show under their names in `pstm conflicts`."""
import json
import mmap
import os
import struct
import subprocess
import time

import pytest

import pstm
from pstm.transaction import TransactionQueue

from procs import Gate, fork, join

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(pstm.__file__))))
CLI = os.path.join(os.environ.get("PSTM_BIN", TOP), "pstm")


def _bump(tx, name, seen):
    tx.set_name(name)
    if tx.attempt > 1:
        seen[0] += 1                 # this attempt followed a conflict
    root = tx.root()
    v = tx.load64(root)
    sum(range(300))                  # a window for the other's commit
    tx.store64(root, v + 1)


def _contend(uri, name, gate, lost, k):
    """A child that runs named transactions on one word until both
    children have lost a few conflicts (lost: shared memory, one count
    per child) or 20 s passed."""
    def child():
        r = pstm.open(uri)
        seen = [0]
        deadline = time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline:
            r.atomic(_bump, name, seen)
            n += 1
            struct.pack_into("q", lost, 8 * k, seen[0])
            if min(struct.unpack_from("2q", lost)) >= 3:
                break
        r.close()
        return b"%d %d" % (n, seen[0])
    return fork(child, gate)


def conflicts(uri):
    p = subprocess.run([CLI, "conflicts", uri, "--json"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["conflicts"]


def test_named_transactions_in_conflict_reports(uri):
    r = pstm.create(uri)
    try:
        gate = Gate()
        lost = mmap.mmap(-1, 16)     # shared with the children
        kids = [_contend(uri, "py-transfer", gate, lost, 0),
                _contend(uri, "py-audit-\u00e9t\u00e9", gate, lost, 1)]
        gate.open()
        out = [x.split() for x in join(kids, timeout=60)]
        assert all(int(lost) >= 3 for _, lost in out), out
        names = set()
        for c in conflicts(uri):
            for side in ("process", "other"):
                if c[side]["source"] == "pstm_tx_name":
                    names.add(c[side]["name"])
        assert "py-transfer" in names
        assert "py-audit-\u00e9t\u00e9" in names
    finally:
        r.close()


def test_unnamed_python_transactions_show_as_unnamed(uri):
    r = pstm.create(uri)
    try:
        gate = Gate()
        lost = mmap.mmap(-1, 16)

        def child(k):
            rr = pstm.open(uri)
            seen = [0]
            deadline = time.monotonic() + 20

            def body(tx):
                if tx.attempt > 1:
                    seen[0] += 1
                v = tx.load64(tx.root())
                sum(range(300))
                tx.store64(tx.root(), v + 1)
            while time.monotonic() < deadline:
                rr.atomic(body)
                struct.pack_into("q", lost, 8 * k, seen[0])
                if min(struct.unpack_from("2q", lost)) >= 3:
                    break
            rr.close()
            return b"%d" % seen[0]
        kids = [fork(lambda: child(0), gate), fork(lambda: child(1), gate)]
        gate.open()
        assert all(int(x) >= 3 for x in join(kids, timeout=60))
        assert conflicts(uri)
        assert all(c[s]["source"] != "pstm_tx_name"
                   for c in conflicts(uri) for s in ("process", "other"))
    finally:
        r.close()


def test_set_name_input(region):
    def body(tx):
        tx.set_name("ok")
        tx.set_name("ok")            # the same name again: nothing new
        tx.set_name(None)            # removes it
        tx.set_name("x" * 111)
        with pytest.raises(pstm.InvalidArgument):
            tx.set_name("x" * 112)
        with pytest.raises(pstm.InvalidArgument):
            tx.set_name("")
        with pytest.raises(pstm.InvalidArgument):
            tx.set_name("a\0b")
        with pytest.raises(TypeError):
            tx.set_name(b"bytes")
        return tx
    tx = region.atomic(body)
    with pytest.raises(pstm.TransactionEnded):
        tx.set_name("late")
    # read-only transactions may be named too
    region.atomic(lambda t: t.set_name("reader"), read_only=True)


def named_task(tx, i):
    tx.set_name("py-task")
    tx.store64(tx.root() + 8 * i, i)


def test_set_name_in_a_task(uri):
    r = pstm.create(uri, size=16 << 20)
    try:
        q = TransactionQueue(r)
        for i in range(1, 5):
            q.add(named_task, i)
        q.run(processes=2)
        assert r.atomic(lambda tx: [tx.load64(tx.root() + 8 * i)
                                    for i in range(1, 5)]) == [1, 2, 3, 4]
    finally:
        r.close()
