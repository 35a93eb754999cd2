"""region.atomic: processes, conflicts, rollback, maps and queues."""
import random
import struct
import threading
import time

import pytest

import pstm

from procs import Gate, fork, join

ACCOUNTS = 16
START = 1000
TRANSFERS = 20000         # per teller
TELLERS = 4


def _accounts(tx):
    return tx.root(8 * (ACCOUNTS + 1))    # + the count of tellers done


def test_bank_four_processes_exact_and_audited(uri):
    """Four teller processes move money between 16 accounts while each
    audits inside its transactions, and a fifth process audits until the
    tellers are done: every audit sees the exact total, and the final
    balances are exactly the start plus every committed transfer (a lost
    update or a lost transaction would break that, even when the total
    holds)."""
    with pstm.create(uri, size=16 << 20) as r:
        def setup(tx):
            base = _accounts(tx)
            for i in range(ACCOUNTS):
                tx.store64(base + 8 * i, START)
        r.atomic(setup)
    total = ACCOUNTS * START

    runs = [0]                        # bodies run in this process

    def transfer(tx, a, b, amount):
        runs[0] += 1
        base = _accounts(tx)
        fa = tx.load64(base + 8 * a)
        if fa < amount:
            return None
        tx.store64(base + 8 * a, fa - amount)
        tx.store64(base + 8 * b, tx.load64(base + 8 * b) + amount)
        return amount                 # what the committed attempt did

    def audit(tx):
        base = _accounts(tx)
        return (sum(tx.load64(base + 8 * i) for i in range(ACCOUNTS)),
                tx.load64(base + 8 * ACCOUNTS))

    def teller(seed):
        def go():
            rnd = random.Random(seed)
            delta = [0] * ACCOUNTS
            audits = wrong = 0
            with pstm.open(uri) as reg:
                for i in range(TRANSFERS):
                    a, b = rnd.sample(range(ACCOUNTS), 2)
                    moved = reg.atomic(transfer, a, b, rnd.randint(1, 400))
                    if moved is not None:
                        delta[a] -= moved
                        delta[b] += moved
                    if i % 8 == 0:
                        audits += 1
                        if reg.atomic(audit, read_only=i % 16 == 0)[0] \
                                != total:
                            wrong += 1

                def done(tx):
                    off = _accounts(tx) + 8 * ACCOUNTS
                    tx.store64(off, tx.load64(off) + 1)
                reg.atomic(done)
            return struct.pack("<%dqQQQ" % ACCOUNTS, *delta, audits, wrong,
                               runs[0])
        return go

    def auditor():
        during = wrong = n = 0
        with pstm.open(uri) as reg:
            while True:
                n += 1
                seen, finished = reg.atomic(audit, read_only=n % 2 == 0)
                wrong += seen != total
                if finished == TELLERS:
                    break
                during += 1
        return struct.pack("<QQ", during, wrong)

    gate = Gate()
    kids = [fork(teller(s), gate) for s in range(TELLERS)] + \
        [fork(auditor, gate)]
    gate.open()
    out = join(kids, timeout=120)
    fmt = "<%dqQQQ" % ACCOUNTS
    tellers = [struct.unpack(fmt, d) for d in out[:TELLERS]]
    during, wrong = struct.unpack("<QQ", out[TELLERS])
    assert wrong == 0, "the auditor saw %d wrong totals" % wrong
    assert during > 0, "the auditor never ran beside the tellers"
    for t in tellers:
        assert t[ACCOUNTS] == (TRANSFERS + 7) // 8 and t[ACCOUNTS + 1] == 0, \
            "a teller's audits saw %d wrong totals" % t[ACCOUNTS + 1]
    with pstm.open(uri) as r:
        def balances(tx):
            base = _accounts(tx)
            return [tx.load64(base + 8 * i) for i in range(ACCOUNTS + 1)]
        final = r.atomic(balances)
    assert final[ACCOUNTS] == TELLERS
    assert sum(final[:ACCOUNTS]) == total
    expect = [START + sum(t[i] for t in tellers) for i in range(ACCOUNTS)]
    assert final[:ACCOUNTS] == expect, "lost updates"
    assert any(t[i] for t in tellers for i in range(ACCOUNTS))
    assert sum(t[ACCOUNTS + 2] for t in tellers) > TELLERS * TRANSFERS, \
        "no transfer ran twice: the tellers did not overlap"


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
    """Four processes increment one word for 0.3 s from the same moment:
    every increment is counted once, and some bodies ran again."""
    with pstm.create(uri, size=16 << 20) as r:
        r.atomic(lambda tx: tx.root(8))

    def hammer():
        runs = done = 0
        with pstm.open(uri) as reg:
            def inc(tx):
                nonlocal runs
                runs += 1
                x = tx.root(8)
                v = tx.load64(x)
                for _ in range(50):        # a window for the others
                    tx.load64(x)
                tx.store64(x, v + 1)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                reg.atomic(inc)
                done += 1
        return struct.pack("<QQ", runs, done)

    gate = Gate()
    kids = [fork(hammer, gate) for _ in range(4)]
    gate.open()
    res = [struct.unpack("<QQ", d) for d in join(kids)]
    runs, done = sum(r for r, _ in res), sum(d for _, d in res)
    with pstm.open(uri) as r:
        assert r.atomic(lambda tx: tx.load64(tx.root(8))) == done
    assert runs > done, "no conflict in %d contended increments" % done


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


def test_names_and_root_known_only_once_committed(uri):
    """A map named, and a root made, in an attempt that rolled back are not
    remembered: later transactions (and other processes) find the ones
    that committed."""
    class Boom(Exception):
        pass

    with pstm.create(uri, size=8 << 20) as r:
        def make_and_fail(tx):
            tx.map("fresh")[b"k"] = b"rolled back"    # makes the root too
            raise Boom()
        with pytest.raises(Boom):
            r.atomic(make_and_fail)
        # the rolled-back blocks are reused by this process
        r.atomic(lambda tx: [tx.alloc(64) for _ in range(8)])

        def other():
            with pstm.open(uri) as reg:
                def make(tx):
                    tx.map("fresh")[b"k"] = b"committed"
                    return tx.root()
                return struct.pack("<Q", reg.atomic(make))
        (root,) = struct.unpack("<Q", join([fork(other)])[0])
        assert r.atomic(lambda tx: tx.root(64)) == root
        assert r.atomic(lambda tx: tx.root()) == root
        assert r.atomic(lambda tx: tx.map("fresh", create=False)[b"k"]) \
            == b"committed"
        assert r.atomic(lambda tx: tx.root()) == root      # known now
        with pytest.raises(pstm.InvalidArgument):           # still checked
            r.atomic(lambda tx: tx.queue("fresh"))
