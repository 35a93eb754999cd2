"""pstm.transaction.TransactionQueue: the region's task queue run by
forked worker processes (real processes, real SIGKILLs)."""
import json
import os
import signal
import subprocess
import threading

import pytest

import pstm
from pstm import transaction
from pstm.transaction import (RemoteTraceback, TaskFailed, TransactionQueue,
                              WorkerDied)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(pstm.__file__))))
CLI = os.path.join(os.environ.get("PSTM_BIN", TOP), "pstm")

DEPTH = 8                      # 511 nodes
NODES = (1 << (DEPTH + 1)) - 1


def queue_listing(uri):
    """`pstm queue URI --json` (its exit status is 1 while tasks failed)."""
    p = subprocess.run([CLI, "queue", uri, "--json"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def py_type(listing):
    return [t for t in listing["types"] if t["name"] == "pstm.py"][0]


def words(tx, n):
    """A zeroed array of n words, its offset in root word 1."""
    root = tx.root()
    base = tx.load64(root + 8)
    if base == 0:
        base = tx.alloc(8 * n)
        for i in range(n):
            tx.store64(base + 8 * i, 0)
        tx.store64(root + 8, base)
    return base


def counts(region, n):
    return region.atomic(lambda tx: [tx.load64(words(tx, n) + 8 * i)
                                     for i in range(n)])


# ---------------------------------------------------------------- tasks
# (top-level functions: tasks are stored by module and qualname)

def visit(tx, node, depth, kill_marker=None, kill_node=None):
    """Count node once; add its two children down to depth 0.  The task
    of kill_node kills its own process, once (the marker file), after
    its writes and before its commit."""
    base = tx.load64(tx.root() + 8)
    x = base + 8 * (node - 1)
    tx.store64(x, tx.load64(x) + 1)
    if depth:
        tx.enqueue(visit, 2 * node, depth - 1, kill_marker, kill_node)
        tx.enqueue(visit, 2 * node + 1, depth - 1, kill_marker, kill_node)
    if node == kill_node:
        try:
            os.close(os.open(kill_marker, os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def bump(tx, i, spin=0):
    base = tx.load64(tx.root() + 8)
    v = tx.load64(base + 8 * i)
    if spin:
        sum(range(spin))       # a window for another worker's commit,
        tx.load64(base + 8 * i)  # seen here: the call returns a conflict
    tx.store64(base + 8 * i, v + 1)


def boom(tx, i):
    bump(tx, i)                # discarded with the task
    raise ValueError("boom %d from a task" % i)


def tag(tx, name):
    tx.pickle_map("tags")[name] = tx.pickle_map("tags").get(name, 0) + 1


def hooked(tx, path):
    bump(tx, 0)
    tx.on_commit(_append, path, b"c")


def _append(path, b):
    with open(path, "ab") as f:
        f.write(b)


# ---------------------------------------------------------------- tests

@pytest.fixture
def marker():
    path = "/tmp/p17q-marker-%d-%d" % (os.getpid(), threading.get_ident())
    yield path
    for p in (path,):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def test_tree_exactly_once_with_a_worker_killed(uri, marker):
    region = pstm.create(uri, size=32 << 20)
    try:
        region.atomic(words, NODES)
        q = TransactionQueue(region)
        q.add(visit, 1, DEPTH, marker, 100)
        with pytest.raises(WorkerDied, match="killed by signal 9"):
            q.run(processes=3)
        assert os.path.exists(marker)      # the killing task did run
        q.run(processes=3)                 # whatever is left
        assert counts(region, NODES) == [1] * NODES
        # the region counts every task once; run() counts only what the
        # workers that reported committed (not the killed one's, which may
        # be none: it can die before its first commit)
        assert 0 < q.number_of_transactions_executed() <= NODES
        listing = queue_listing(uri)
        assert listing["pending"] == 0 and listing["failed_count"] == 0
        assert py_type(listing)["executed"] == NODES
    finally:
        region.close()


def test_conflicting_tasks_rerun_exactly(uri, tmp_path):
    region = pstm.create(uri, size=16 << 20)
    try:
        region.atomic(words, 1)
        q = TransactionQueue(region)
        n = 120
        for _ in range(n):
            q.add(bump, 0, spin=20000)
        q.run(processes=3)
        assert counts(region, 1) == [n]
        assert q.number_of_transactions_executed() == n
        t = py_type(queue_listing(uri))
        assert t["executed"] == n and t["pending"] == 0
        assert t["aborts"] > 0             # conflicts did re-run tasks
    finally:
        region.close()


def test_commit_hooks_of_tasks_run_once(uri, marker):
    region = pstm.create(uri, size=16 << 20)
    try:
        region.atomic(words, 1)
        q = TransactionQueue(region)
        for _ in range(30):
            q.add(hooked, marker)
        q.run(processes=2)
        with open(marker, "rb") as f:
            assert f.read() == b"c" * 30
        assert counts(region, 1) == [30]
    finally:
        region.close()


def test_exception_reraised_with_traceback_others_stay_queued(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        region.atomic(words, 2)
        q = TransactionQueue(region)
        q.add(boom, 1)
        with pytest.raises(ValueError, match="boom 1 from a task") as ei:
            q.run(processes=2)
        cause = ei.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "in boom" in cause.text and "raise ValueError" in cause.text
        assert ei.value.remote_traceback == cause.text
        assert counts(region, 2) == [0, 0]   # its write was discarded
        listing = queue_listing(uri)
        assert listing["failed_count"] == 1 and listing["pending"] == 0
        assert [f["type"] for f in listing["failed"]] == ["pstm.py"]
        assert listing["failed"][0]["error"]["code"] == \
            transaction._core.TASK_RAISED

        for _ in range(20):
            q.add(bump, 0)
        with pytest.raises(TaskFailed, match="--retry-failed"):
            q.run(processes=2)             # stopped: nothing runs
        assert counts(region, 2) == [0, 0]
        assert queue_listing(uri)["pending"] == 20

        subprocess.run([CLI, "queue", uri, "--drop-failed"], check=True,
                       capture_output=True, timeout=30)
        q.run(processes=2)
        assert counts(region, 2) == [20, 0]
        assert queue_listing(uri)["pending"] == 0
    finally:
        region.close()


def test_exception_among_many_keeps_the_rest_consistent(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        region.atomic(words, 2)
        q = TransactionQueue(region)
        for _ in range(40):
            q.add(bump, 0, spin=2000)
        q.add(boom, 1)
        for _ in range(40):
            q.add(bump, 0, spin=2000)
        with pytest.raises(ValueError, match="boom 1"):
            q.run(processes=2)
        done = counts(region, 2)
        listing = queue_listing(uri)
        assert done[1] == 0
        assert listing["failed_count"] == 1
        assert listing["pending"] == 80 - done[0]  # the rest: still queued
        assert q.number_of_transactions_executed() == done[0]
    finally:
        region.close()


def test_added_inside_a_transaction_only_if_it_commits(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        q = TransactionQueue(region)

        def commits(tx):
            q.add(tag, "add committed")
            tx.enqueue(tag, "enqueue committed")

        class Boom(Exception):
            pass

        def aborts(tx):
            q.add(tag, "add rolled back")
            tx.enqueue(tag, "enqueue rolled back")
            raise Boom()

        region.atomic(commits)
        with pytest.raises(Boom):
            region.atomic(aborts)
        assert queue_listing(uri)["pending"] == 2
        q.run(processes=2)
        tags = region.atomic(lambda tx: dict(tx.pickle_map("tags").items()))
        assert tags == {"add committed": 1, "enqueue committed": 1}
        assert q.number_of_transactions_executed() == 2
    finally:
        region.close()


def nested_holder():
    def inner(tx):
        pass
    return inner


def test_bad_input_queues_nothing(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        q = TransactionQueue(region)
        with pytest.raises(TypeError, match="lambda"):
            q.add(lambda tx: None)
        with pytest.raises(TypeError, match="nested function"):
            q.add(nested_holder())
        with pytest.raises(TypeError, match="cannot be pickled"):
            q.add(tag, threading.Lock())
        with pytest.raises(TypeError, match="cannot be pickled"):
            q.add(tag, name=lambda: 0)
        with pytest.raises(TypeError, match="callable"):
            q.add(42)

        def in_tx(tx):
            with pytest.raises(TypeError, match="lambda"):
                tx.enqueue(lambda tx: None)
            with pytest.raises(TypeError, match="cannot be pickled"):
                tx.enqueue(tag, threading.Lock())
            with pytest.raises(pstm.InTransaction):
                q.run(processes=1)
        region.atomic(in_tx)
        with pytest.raises(pstm.InvalidArgument):
            q.run(processes=0)
        with pytest.raises(TypeError):
            q.run(processes="2")
        with pytest.raises(TypeError):
            TransactionQueue("shm:nope")
        assert queue_listing(uri)["pending"] == 0
        q.run(processes=1)
        assert q.number_of_transactions_executed() == 0
    finally:
        region.close()
    with pytest.raises(pstm.RegionClosed):
        q.add(tag, "x")
    with pytest.raises(pstm.RegionClosed):
        q.run(processes=1)
    with pytest.raises(pstm.RegionClosed):
        TransactionQueue(region)


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling for this one")


def raises_unpicklable(tx):
    raise Unpicklable("kept only as text")


def test_unpicklable_exception_comes_back_as_text(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        q = TransactionQueue(region)
        q.add(raises_unpicklable)
        with pytest.raises(TaskFailed, match="Unpicklable") as ei:
            q.run(processes=1)
        assert "kept only as text" in ei.value.remote_traceback
        assert "in raises_unpicklable" in ei.value.__cause__.text
    finally:
        region.close()


def run_queue_elsewhere(uri, processes):
    """In a forked child: another process running the same queue."""
    region = pstm.open(uri)
    try:
        q = TransactionQueue(region)
        q.run(processes=processes)
        return b"%d" % q.number_of_transactions_executed()
    finally:
        region.close()


def test_two_callers_share_one_queue(uri):
    from procs import fork, join
    region = pstm.create(uri, size=32 << 20)
    try:
        region.atomic(words, NODES)
        q = TransactionQueue(region)
        q.add(visit, 1, DEPTH)
        child = [fork(lambda: run_queue_elsewhere(uri, 1))]
        q.run(processes=2)
        other = int(join(child)[0])
        assert counts(region, NODES) == [1] * NODES
        assert q.number_of_transactions_executed() + other == NODES
        assert queue_listing(uri)["pending"] == 0
    finally:
        region.close()


# --------------------------------------------- the failed list from Python

def picky(tx, i, note="x"):
    """Counts i once word 1 of the array is set; raises before that."""
    base = tx.load64(tx.root() + 8)
    if not tx.load64(base + 8):
        raise RuntimeError("not yet %d" % i)
    bump(tx, i)


def _allow(tx):
    tx.store64(words(tx, 4) + 8, 1)


def test_failed_list_retry_and_drop(uri):
    region = pstm.create(uri, size=16 << 20)
    try:
        region.atomic(words, 4)
        q = TransactionQueue(region)
        assert q.failed() == []
        assert q.retry_failed() == 0 and q.drop_failed() == 0
        q.add(picky, 2, note="first")
        with pytest.raises(RuntimeError, match="not yet 2"):
            q.run(processes=2)

        # listed as pstm queue lists it, with what add() queued
        (f,) = q.failed()
        listing = queue_listing(uri)
        assert [x["id"] for x in listing["failed"]] == [f.id]
        assert f.type == "pstm.py" and f.error == transaction.TASK_RAISED
        assert f.function == __name__ + ".picky"
        assert f.args == (2,) and f.kwds == {"note": "first"}
        assert "raised a Python exception" in f.message
        assert "picky" in repr(f)

        # another process sees the same list
        def child():
            r = pstm.open(uri)
            ids = [t.id for t in TransactionQueue(r).failed()]
            r.close()
            return json.dumps(ids).encode()
        from procs import fork, join
        assert json.loads(join([fork(child)])[0]) == [f.id]

        # retried: queued again, fails again (same id), nothing counted
        assert q.retry_failed() == 1
        assert q.failed() == []
        assert queue_listing(uri)["pending"] == 1
        with pytest.raises(RuntimeError, match="not yet 2"):
            q.run(processes=1)
        assert [t.id for t in q.failed()] == [f.id]
        assert counts(region, 4)[2] == 0   # its write was discarded
        # once it can pass, a retry runs it, once
        region.atomic(_allow)
        assert q.retry_failed() == 1
        q.run(processes=2)
        assert counts(region, 4)[2] == 1
        assert q.failed() == [] and queue_listing(uri)["failed_count"] == 0

        # dropped: gone, never run, the queue runs again
        region.atomic(lambda tx: tx.store64(words(tx, 4) + 8, 0))
        q.add(picky, 3)
        with pytest.raises(RuntimeError, match="not yet 3"):
            q.run(processes=1)
        for _ in range(5):
            q.add(bump, 0)
        with pytest.raises(TaskFailed, match="retry_failed"):
            q.run(processes=1)             # stopped while one failed
        assert q.drop_failed() == 1
        assert q.failed() == []
        q.run(processes=2)
        assert counts(region, 4)[0] == 5 and counts(region, 4)[3] == 0
        assert queue_listing(uri)["pending"] == 0
    finally:
        region.close()


def test_failed_list_calls_outside_transactions_only(uri):
    region = pstm.create(uri, size=16 << 20)
    q = TransactionQueue(region)
    for call in (q.failed, q.retry_failed, q.drop_failed):
        with pytest.raises(pstm.InTransaction):
            region.atomic(lambda tx: call())
    region.close()
    for call in (q.failed, q.retry_failed, q.drop_failed):
        with pytest.raises(pstm.RegionClosed):
            call()
