"""tx.on_commit, tx.on_abort and tx.inevitable(): when hooks run, what
their exceptions do, and an inevitable transaction against other
processes (which keep committing, wait for its words, or die)."""
import os
import signal
import struct
import sys
import threading
import time

import pytest

import pstm
from procs import Gate, fork, join, kill_all


def word(tx, i=1):
    return tx.root() + 8 * i


def lose_once(region, tx, i=1):
    """In the first attempt only: another thread commits word i, so that
    this attempt (which read it) loses at its next access or commit."""
    if tx.attempt == 1:
        t = threading.Thread(target=region.atomic, args=(
            lambda t2: t2.store64(word(t2, i), t2.load64(word(t2, i)) + 100),))
        t.start()
        t.join()


def test_commit_hooks_run_after_commit_in_order_outside(region):
    seen = []

    def hook(tag):
        # after the commit, outside any transaction: a new one sees it
        seen.append((tag, pstm.current(),
                     region.atomic(lambda tx: tx.load64(word(tx)))))

    def body(tx):
        tx.store64(word(tx), 7)
        tx.on_commit(hook, "a")
        tx.on_commit(hook, tag="b")
        region.atomic(lambda inner: inner.on_commit(hook, "nested"))
        assert seen == []
        return "result"

    assert region.atomic(body) == "result"
    assert seen == [("a", None, 7), ("b", None, 7), ("nested", None, 7)]


def test_abort_hooks_run_on_each_rollback_commit_hooks_once(region):
    region.atomic(lambda tx: tx.store64(word(tx), 1))
    events = []

    def body(tx):
        tx.on_abort(events.append, ("abort", tx.attempt))
        tx.on_commit(events.append, ("commit", tx.attempt))
        v = tx.load64(word(tx))
        lose_once(region, tx)
        tx.store64(word(tx), v + 1)

    region.atomic(body)
    assert events == [("abort", 1), ("commit", 2)]
    assert region.atomic(lambda tx: tx.load64(word(tx))) == 102

    class Boom(Exception):
        pass

    def fails(tx):
        tx.on_abort(events.append, "abort before the exception")
        tx.on_commit(events.append, "never")
        tx.on_abort(lambda: events.append(pstm.current()))
        raise Boom()

    del events[:]
    with pytest.raises(Boom):
        region.atomic(fails)
    assert events == ["abort before the exception", None]


def test_exception_in_a_commit_hook(region, monkeypatch):
    ran = []
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    def body(tx):
        tx.store64(word(tx), 5)
        tx.on_commit(lambda: 1 / 0)
        tx.on_commit(ran.append, "second")
        tx.on_commit(lambda: {}["third"])
        tx.on_commit(ran.append, "fourth")

    with pytest.raises(ZeroDivisionError) as e:
        region.atomic(body)
    assert ran == ["second", "fourth"]          # the others still ran
    assert "committed" in "".join(getattr(e.value, "__notes__", ["committed"]))
    assert region.atomic(lambda tx: tx.load64(word(tx))) == 5   # it stays
    assert len(ignored) == 1 and isinstance(ignored[0].exc_value, KeyError)


def test_exception_in_an_abort_hook(region):
    runs = []

    def body(tx):
        runs.append(tx.attempt)
        tx.on_abort(lambda: 1 / 0)
        v = tx.load64(word(tx))
        lose_once(region, tx)
        tx.store64(word(tx), v + 1)

    # after a lost conflict: it propagates and the body does not run again
    with pytest.raises(ZeroDivisionError):
        region.atomic(body)
    assert runs == [1]
    assert region.atomic(lambda tx: tx.load64(word(tx))) == 100

    class Boom(Exception):
        pass

    def fails(tx):
        tx.on_abort(lambda: 1 / 0)
        raise Boom()

    # after the body's exception: the hook's, chained to it
    with pytest.raises(ZeroDivisionError) as e:
        region.atomic(fails)
    assert isinstance(e.value.__context__, Boom)


def test_hook_arguments_checked(region):
    kept = []
    with pytest.raises(TypeError):
        region.atomic(lambda tx: tx.on_commit(42))
    with pytest.raises(TypeError):
        region.atomic(lambda tx: tx.on_abort("not callable"))
    region.atomic(kept.append)
    with pytest.raises(pstm.TransactionEnded):
        kept[0].on_abort(print)
    with pytest.raises(pstm.TransactionEnded):
        kept[0].inevitable()


def test_inevitable_in_read_only_and_rollback_after_it(region):
    with pytest.raises(pstm.InvalidArgument):
        region.atomic(lambda tx: tx.inevitable(), read_only=True)

    class Boom(Exception):
        pass

    def body(tx):
        tx.store64(word(tx), 9)
        tx.inevitable()
        assert tx.is_inevitable
        tx.inevitable()                 # again: no-op
        raise Boom()

    with pytest.raises(Boom):
        region.atomic(body)
    assert region.atomic(lambda tx: tx.load64(word(tx))) == 0
    # the role was released: another transaction becomes inevitable
    region.atomic(lambda tx: (tx.inevitable(), tx.store64(word(tx), 3)))
    assert region.atomic(lambda tx: tx.load64(word(tx))) == 3


def _read_line(fd, timeout=10.0):
    """One line from fd (bytes, without the newline) within timeout."""
    import select
    buf = b""
    end = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("no line within %.0f s" % timeout)
        c = os.read(fd, 1)
        if not c:
            raise EOFError("pipe closed")
        buf += c
    return buf[:-1]


def test_inevitable_against_another_process(uri):
    """Process A reads x, becomes inevitable, writes to a pipe (the I/O
    that must happen once) and waits inside its transaction until B has
    committed 50 transactions on another word y; B then increments x
    tenfold, which must wait for A's commit and see A's write.  (Offsets
    are found before: an inevitable transaction locks every word it
    read, the root's pointer too.)"""
    with pstm.create(uri, size=8 << 20) as r:
        base = r.atomic(lambda tx: tx.root())
    x, y = base + 8, base + 8 * 40
    a_to_b = os.pipe()
    b_to_a = os.pipe()
    io = os.pipe()

    def inevitable_a():
        with pstm.open(uri) as reg:
            def body(tx):
                v = tx.load64(x)
                tx.inevitable()
                os.write(io[1], b"I")              # the I/O: exactly once
                os.write(a_to_b[1], b"inevitable\n")
                assert _read_line(b_to_a[0]) == b"y done"
                time.sleep(0.2)                    # B's x transaction waits
                tx.store64(x, v + 1)
            reg.atomic(body)
            os.write(a_to_b[1], b"committed\n")

    def other_b():
        with pstm.open(uri) as reg:
            assert _read_line(a_to_b[0]) == b"inevitable"
            for _ in range(50):
                reg.atomic(lambda tx: tx.store64(y, tx.load64(y) + 1))
            os.write(b_to_a[1], b"y done\n")

            def tenfold(tx):
                v = tx.load64(x)
                tx.store64(x, v * 10)
                return v
            seen = reg.atomic(tenfold)
            assert _read_line(a_to_b[0]) == b"committed"
        return struct.pack("<Q", seen)

    kids = [fork(inevitable_a), fork(other_b)]
    out = join(kids, timeout=60)
    os.close(io[1])
    ios = os.read(io[0], 100)
    assert ios == b"I", "the body ran %d times after inevitable()" % len(ios)
    (seen,) = struct.unpack("<Q", out[1])
    assert seen == 1, "B's transaction on x did not wait for A's commit"
    with pstm.open(uri) as r:
        assert r.atomic(lambda tx: (tx.load64(x), tx.load64(y))) == (10, 50)


def test_second_inevitable_waits_for_the_first(uri):
    with pstm.create(uri, size=8 << 20) as r:
        r.atomic(lambda tx: tx.root())
    ready = os.pipe()
    gate = Gate()

    def first():
        with pstm.open(uri) as reg:
            def body(tx):
                tx.inevitable()
                tx.store64(word(tx, 2), 1)
                os.write(ready[1], b"in\n")
                time.sleep(0.3)
                return time.monotonic()          # still inevitable here
            return struct.pack("<d", reg.atomic(body))

    def second():
        with pstm.open(uri) as reg:
            assert _read_line(ready[0]) == b"in"

            def body(tx):
                tx.inevitable()                     # waits for first's end
                t = time.monotonic()
                tx.store64(word(tx, 3), 1)         # a word first never had
                return t
            return struct.pack("<d", reg.atomic(body))

    kids = [fork(first, gate), fork(second, gate)]
    gate.open()
    end_first, became_second = [struct.unpack("<d", d)[0]
                                for d in join(kids, timeout=60)]
    assert became_second > end_first, "both were inevitable at once"


def test_inevitable_process_killed(uri):
    """A process SIGKILLed inside an inevitable transaction: while it
    lives, a transaction on its word waits; once it is dead its write is
    gone, and others use the word and become inevitable again."""
    with pstm.create(uri, size=8 << 20) as r:
        r.atomic(lambda tx: tx.store64(word(tx, 5), 42))
    ready = os.pipe()

    def victim():
        with pstm.open(uri) as reg:
            def body(tx):
                tx.inevitable()
                tx.store64(word(tx, 5), 666)
                os.write(ready[1], b"in\n")
                time.sleep(60)                       # killed here
            reg.atomic(body)

    victim_pid, victim_fd = fork(victim)
    pending = []
    try:
        assert _read_line(ready[0]) == b"in"
        result = os.pipe()

        def user():
            with pstm.open(uri) as reg:
                v = reg.atomic(lambda tx: tx.load64(word(tx, 5)))
                os.write(result[1], b"%d\n" % v)
                reg.atomic(lambda tx: (tx.inevitable(),
                                       tx.store64(word(tx, 5), v + 1)))
            return b"ok"

        pending.append(fork(user))
        with pytest.raises(TimeoutError):       # blocked behind the victim
            _read_line(result[0], timeout=0.5)
        os.kill(victim_pid, signal.SIGKILL)
        os.waitpid(victim_pid, 0)
        victim_pid = None
        assert _read_line(result[0], timeout=30) == b"42"
        assert join(pending, timeout=30) == [b"ok"]
        pending = []
    finally:
        if victim_pid is not None:
            kill_all([(victim_pid, victim_fd)])
        kill_all(pending)
    with pstm.open(uri) as r:
        assert r.atomic(lambda tx: tx.load64(word(tx, 5))) == 43
