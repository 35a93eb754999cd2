"""pstm.transaction: PyPy's add/run/set_num_threads in one process."""
import threading

import pytest

import pstm
from pstm import transaction


def counter(tx):
    return tx.root(16)


def bump(by=1):
    tx = pstm.current()
    x = counter(tx)
    tx.store64(x, tx.load64(x) + by)


def value(region):
    return region.atomic(lambda tx: tx.load64(counter(tx)))


def test_run_all_pending_on_threads_exact(region):
    transaction.set_num_threads(4)
    for _ in range(300):
        transaction.add(bump)
    transaction.add(bump, by=1000)
    transaction.run(region)
    assert value(region) == 1300


def test_add_inside_a_transaction_runs_only_if_it_commits(region):
    ran = []

    def child(tag):
        ran.append(tag)
        bump()

    def commits(tx):
        transaction.add(child, "committed")

    class Boom(Exception):
        pass

    def aborts(tx):
        transaction.add(child, "rolled back")
        raise Boom()

    region.atomic(commits)
    with pytest.raises(Boom):
        region.atomic(aborts)
    assert ran == []                   # added on commit: pending, not run
    transaction.run()                  # children carry their region
    assert ran == ["committed"]
    assert value(region) == 1


def test_added_once_even_when_the_parent_reruns(region):
    region.atomic(counter)             # the root: not private to parent
    def parent(tx):
        transaction.add(bump, 10)
        x = counter(tx)
        v = tx.load64(x)
        if tx.attempt == 1:
            t = threading.Thread(target=region.atomic,
                                 args=(lambda t2: t2.store64(counter(t2), 1),))
            t.start()
            t.join()
        tx.store64(x, v + 1)
        return tx.attempt

    assert region.atomic(parent) == 2
    transaction.run(region)
    assert value(region) == 12          # 1 + parent's 1 + one child's 10


def test_tasks_add_tasks_a_tree(region):
    def node(depth):
        bump()
        if depth:
            transaction.add(node, depth - 1)
            transaction.add(node, depth - 1)

    transaction.add(node, 6)
    transaction.set_num_threads(3)
    transaction.run(region)
    assert value(region) == 2 ** 7 - 1


def test_exception_cancels_pending_and_reraises(region):
    transaction.set_num_threads(1)     # one thread: a definite order

    class Boom(Exception):
        pass

    def fail():
        raise Boom("task failed")

    transaction.add(fail)
    for _ in range(50):
        transaction.add(bump)
    with pytest.raises(Boom, match="task failed"):
        transaction.run(region)
    transaction.run(region)            # nothing left: cancelled
    assert value(region) == 0
    transaction.set_num_threads(4)


def test_run_inside_a_transaction_raises(region):
    with pytest.raises(pstm.InTransaction):
        region.atomic(lambda tx: transaction.run(region))


def test_tasks_without_region_run_one_at_a_time():
    active = []
    peak = []

    def task():
        active.append(1)
        peak.append(len(active))
        active.pop()

    for _ in range(100):
        transaction.add(task)
    transaction.set_num_threads(4)
    transaction.run()
    assert len(peak) == 100 and max(peak) == 1


def test_bad_arguments():
    with pytest.raises(TypeError):
        transaction.add(42)
    with pytest.raises(pstm.InvalidArgument):
        transaction.set_num_threads(0)
    with pytest.raises(TypeError):
        transaction.set_num_threads("4")
