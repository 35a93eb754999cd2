"""region.atomic: processes, conflicts, rollback, maps and queues."""
import os
import random
import struct
import threading

import pytest

import pstm

ACCOUNTS = 8
START = 1000


def fork(fn):
    """Run fn() in a child; returns (pid, read end of its result pipe).
    The child writes fn's result (bytes) and exits 0, or exits 1."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            os.write(wfd, fn())
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(wfd)
    return pid, rfd


def join(children):
    out = []
    for pid, rfd in children:
        with os.fdopen(rfd, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        out.append(data)
    return out


def test_bank_four_processes_total_exact_auditor_never_wrong(uri):
    with pstm.create(uri, size=16 << 20) as r:
        def setup(tx):
            base = tx.root(8 * ACCOUNTS)
            for i in range(ACCOUNTS):
                tx.store64(base + 8 * i, START)
        r.atomic(setup)

    transfers = 1500

    def teller(seed):
        def go():
            rnd = random.Random(seed)
            attempts = 0
            with pstm.open(uri) as reg:
                def transfer(tx, a, b, amount):
                    nonlocal attempts
                    attempts += 1
                    base = tx.root(8 * ACCOUNTS)
                    fa = tx.load64(base + 8 * a)
                    if fa < amount:
                        return
                    tx.store64(base + 8 * a, fa - amount)
                    tx.store64(base + 8 * b, tx.load64(base + 8 * b) + amount)
                for _ in range(transfers):
                    a, b = rnd.sample(range(ACCOUNTS), 2)
                    reg.atomic(transfer, a, b, rnd.randint(1, 50))
            return struct.pack("<QQ", attempts, transfers)
        return go

    def auditor():
        audits = wrong = 0
        with pstm.open(uri) as reg:
            def total(tx):
                base = tx.root(8 * ACCOUNTS)
                return sum(tx.load64(base + 8 * i) for i in range(ACCOUNTS))
            for _ in range(600):
                audits += 1
                if reg.atomic(total, read_only=audits % 2 == 0) != \
                        ACCOUNTS * START:
                    wrong += 1
        return struct.pack("<QQ", audits, wrong)

    kids = [fork(teller(s)) for s in range(4)] + [fork(auditor)]
    results = [struct.unpack("<QQ", d) for d in join(kids)]
    attempts = sum(a for a, _ in results[:4])
    done = sum(n for _, n in results[:4])
    audits, wrong = results[4]
    assert done == 4 * transfers
    assert audits == 600 and wrong == 0
    assert attempts >= done
    with pstm.open(uri) as r:
        def check(tx):
            base = tx.root(8 * ACCOUNTS)
            return [tx.load64(base + 8 * i) for i in range(ACCOUNTS)]
        assert sum(r.atomic(check)) == ACCOUNTS * START


def _forced_conflict(region, body_extra=None):
    """A body that reads x, lets another thread commit x += 1, then writes
    x + 1: its first attempt must lose, the second commit."""
    attempts = []
    region.atomic(lambda tx: tx.root(16))  # not private to the body

    def other(tx, x):
        tx.store64(x, tx.load64(x) + 1)

    def body(tx):
        attempts.append(tx.attempt)
        x = tx.root(16)
        v = tx.load64(x)
        if body_extra:
            body_extra(tx)
        if tx.attempt == 1:
            t = threading.Thread(target=region.atomic, args=(other, x))
            t.start()
            t.join()
        tx.store64(x, v + 1)

    region.atomic(body)
    return attempts, region.atomic(lambda tx: tx.load64(tx.root(16)))


def test_conflict_reruns_the_body(region):
    before = region.stats()
    attempts, x = _forced_conflict(region)
    assert attempts == [1, 2]
    assert x == 2                      # the other's +1 and ours, both
    after = region.stats()
    aborts = sum(after[k] - before[k]
                 for k in ("aborts_read", "aborts_lock", "aborts_validate"))
    assert aborts >= 1


def test_conflicts_between_processes_are_rerun(uri):
    with pstm.create(uri, size=16 << 20) as r:
        r.atomic(lambda tx: tx.root(8))

    def hammer():
        n = 0
        with pstm.open(uri) as reg:
            def inc(tx):
                nonlocal n
                n += 1
                x = tx.root(8)
                v = tx.load64(x)
                for _ in range(50):        # a window for the others
                    tx.load64(x)
                tx.store64(x, v + 1)
            for _ in range(400):
                reg.atomic(inc)
        return struct.pack("<Q", n)

    runs = [struct.unpack("<Q", d)[0] for d in join([fork(hammer)
                                                      for _ in range(4)])]
    with pstm.open(uri) as r:
        assert r.atomic(lambda tx: tx.load64(tx.root(8))) == 1600
    assert sum(runs) > 1600, "no conflict in 1600 contended increments"


def test_exception_rolls_back_and_propagates(region):
    region.atomic(lambda tx: (tx.store64(tx.root() + 8, 7),
                              tx.map("m").__setitem__(b"k", b"old")))

    class Boom(Exception):
        pass

    def body(tx):
        tx.store64(tx.root() + 8, 99)
        tx.map("m")[b"k"] = b"new"
        tx.map("m")[b"k2"] = b"x"
        tx.queue("q").push(b"item")
        raise Boom("no")

    with pytest.raises(Boom):
        region.atomic(body)
    assert region.atomic(lambda tx: tx.load64(tx.root() + 8)) == 7
    assert region.atomic(lambda tx: dict(tx.map("m").items())) == \
        {b"k": b"old"}
    assert region.atomic(lambda tx: list(tx.queue("q"))) == []


def test_swallowed_retry_still_reruns(region):
    attempts = []
    region.atomic(lambda tx: tx.root(16))

    def sneaky(tx):
        try:
            v = tx.load64(tx.root(16))
            if tx.attempt == 1:
                t = threading.Thread(target=region.atomic, args=(
                    lambda t2: t2.store64(t2.root(16), 5),))
                t.start()
                t.join()
                v = tx.load64(tx.root(16))   # raises the retry: caught
            tx.store64(tx.root(16), v + 1)
            attempts.append(tx.attempt)
        except BaseException:
            raise RuntimeError("masked")

    region.atomic(sneaky)
    assert attempts == [2]
    assert region.atomic(lambda tx: tx.load64(tx.root(16))) == 6


def test_decorator_nesting_and_result(region):
    @region.transactional
    def bump(tx, by):
        x = tx.root(16)
        tx.store64(x, tx.load64(x) + by)
        return tx.load64(x)

    assert bump(2) == 2
    assert region.atomic(lambda tx: bump(3)) == 5   # flattened
    assert bump.__name__ == "bump"


def test_map_is_a_mutable_mapping(region):
    def fill(tx):
        m = tx.map(1)
        for i in range(100):
            m[b"k%d" % i] = b"v%d" % i
        m[b""] = b""
        m[b"big"] = b"z" * 5000
        del m[b"k0"]
        return len(m)

    assert region.atomic(fill) == 101

    def check(tx):
        m = tx.map(1)
        assert b"k0" not in m and b"k1" in m and m[b""] == b""
        assert m.get(b"nope") is None and m.get(b"nope", b"d") == b"d"
        with pytest.raises(KeyError):
            m[b"k0"]
        with pytest.raises(KeyError):
            del m[b"k0"]
        assert len(m[b"big"]) == 5000
        assert sorted(m) == sorted(dict(m.items()))
        assert m.pop(b"k1") == b"v1"
        m.update({b"a": b"1"})
        return len(m)

    assert region.atomic(check) == 101
    assert region.atomic(lambda tx: tx.map(1, create=False)[b"a"]) == b"1"
    with pytest.raises(KeyError):
        region.atomic(lambda tx: tx.map("absent", create=False))


def test_pickle_map_and_queue(region):
    def put(tx):
        p = tx.pickle_map("objs")
        p["a"] = {"list": [1, 2, 3]}
        p[(1, "b")] = 2.5
        q = tx.queue("jobs")
        for i in range(5):
            q.push(b"job%d" % i)
        q.push(b"J" * 3000)

    region.atomic(put)

    def get(tx):
        p = tx.pickle_map("objs")
        q = tx.queue("jobs")
        return dict(p), q.pop(), len(q), list(q)[-1][:3]

    objs, first, n, last = region.atomic(get)
    assert objs == {"a": {"list": [1, 2, 3]}, (1, "b"): 2.5}
    assert first == b"job0" and n == 5 and last == b"JJJ"
    rest = region.atomic(lambda tx: [tx.queue("jobs").pop()
                                     for _ in range(6)])
    assert rest[:4] == [b"job1", b"job2", b"job3", b"job4"]
    assert len(rest[4]) == 3000 and rest[5] is None


def test_on_commit_runs_only_after_commit(region):
    seen = []

    def ok(tx):
        tx.on_commit(seen.append, "committed")
        assert seen == []

    def bad(tx):
        tx.on_commit(seen.append, "rolled back")
        raise KeyError("x")

    region.atomic(ok)
    with pytest.raises(KeyError):
        region.atomic(bad)
    attempts, _ = _forced_conflict(
        region, lambda tx: tx.on_commit(seen.append, tx.attempt))
    assert attempts == [1, 2]
    assert seen == ["committed", 2]
