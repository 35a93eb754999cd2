#!/usr/bin/env python3
"""bank.py - the bank workload in Python: pstm against what a CPython user
would otherwise share between processes.

Every operation moves 1..100 between two distinct random accounts (no
move if the source holds less), as one transaction or one critical
section; accounts start at 1000.  Systems:

  pstm-shm      pstm, shm: region (volatile); accounts are words of the
                root object (tx.load64 / tx.store64)
  pstm-map      pstm, shm: region; accounts in tx.map() (bytes keys,
                8-byte values): the MutableMapping layer's cost
  pstm-file     pstm, durable file region (each commit persisted, msync)
  manager       multiprocessing.Manager().dict() under a Manager().Lock()
  sqlite-shm    sqlite3, WAL, synchronous=OFF, in /dev/shm; BEGIN IMMEDIATE
  sqlite-file   sqlite3, WAL, synchronous=FULL, in the --dir folder
  shm-lock      a multiprocessing.shared_memory array of int64 under one
                multiprocessing.Lock: the fastest a user builds by hand
  floor         a plain list in one process, no sharing, no lock (1
                process only): the interpreter's cost of the body itself

Each configuration runs in fresh worker processes (fork) on a fresh store;
the workers open the store, wait at a barrier and run for --duration
seconds.  Systems and process counts are interleaved within each round,
so that a slow spell of a shared machine hits all of them; the figure is
the median over --runs rounds.  After each run the total must be exact
(else the run is reported FAIL and the script exits 1).

    python3 python/bench/bank.py                  # 5 rounds of 0.5 s
    python3 python/bench/bank.py --markdown       # tables for docs/
    python3 python/bench/bank.py --breakdown      # where pstm's time goes

Needs the pstm package (PYTHONPATH=build/python, or installed).
"""
import argparse
import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import time
from multiprocessing import shared_memory

import pstm

START = 1000
SYSTEMS = ["pstm-shm", "pstm-map", "pstm-file", "manager", "sqlite-shm",
           "sqlite-file", "shm-lock", "floor"]
CTX = multiprocessing.get_context("fork")


def ops_for(seed, accounts, n=1 << 14):
    """A worker's operations: (src, dst, amount), generated before timing."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rnd.sample(range(accounts), 2)
        out.append((a, b, rnd.randint(1, 100)))
    return out


# ------------------------------------------------------------ systems
# Each: setup(cfg) -> store (in the driver), attach(store) -> (transfer,
# detach) in a worker, total(store) -> int in the driver, teardown(store).

class Pstm:
    def __init__(self, cfg, kind):
        self.kind = kind
        self.accounts = cfg.accounts
        if kind == "pstm-file":
            self.uri = os.path.join(cfg.dir, "%s-%d.pstm" % (cfg.prefix,
                                                             os.getpid()))
            durability = "durable"
        else:
            self.uri = "shm:%s-%d-%s" % (cfg.prefix, os.getpid(), kind)
            durability = "volatile"
        with pstm.create(self.uri, size=32 << 20, durability=durability,
                         replace=True, log_bytes=1 << 18) as r:
            if kind == "pstm-map":
                def init(tx):
                    m = tx.map("accounts")
                    for i in range(self.accounts):
                        m[b"%d" % i] = START.to_bytes(8, "little")
            else:
                def init(tx):
                    base = tx.root(8 * self.accounts)
                    for i in range(self.accounts):
                        tx.store64(base + 8 * i, START)
            r.atomic(init)

    def attach(self):
        r = pstm.open(self.uri)
        if self.kind == "pstm-map":
            keys = [b"%d" % i for i in range(self.accounts)]

            def body(tx, a, b, amount):
                m = tx.map("accounts")
                fa = int.from_bytes(m[keys[a]], "little")
                if fa >= amount:
                    m[keys[a]] = (fa - amount).to_bytes(8, "little")
                    fb = int.from_bytes(m[keys[b]], "little")
                    m[keys[b]] = (fb + amount).to_bytes(8, "little")
        else:
            base = r.atomic(lambda tx: tx.root(8 * self.accounts))

            def body(tx, a, b, amount):
                fa = tx.load64(base + 8 * a)
                if fa >= amount:
                    tx.store64(base + 8 * a, fa - amount)
                    tx.store64(base + 8 * b, tx.load64(base + 8 * b) + amount)
        atomic = r.atomic

        def transfer(a, b, amount):
            atomic(body, a, b, amount)
        return transfer, r.close

    def total(self):
        with pstm.open(self.uri) as r:
            if self.kind == "pstm-map":
                return r.atomic(lambda tx: sum(
                    int.from_bytes(v, "little")
                    for v in tx.map("accounts").values()))
            return r.atomic(lambda tx: sum(
                tx.load64(tx.root(8 * self.accounts) + 8 * i)
                for i in range(self.accounts)))

    def teardown(self):
        pstm.unlink(self.uri)


class Manager:
    def __init__(self, cfg):
        self.mgr = CTX.Manager()
        self.d = self.mgr.dict({i: START for i in range(cfg.accounts)})
        self.lock = self.mgr.Lock()

    def attach(self):
        d, lock = self.d, self.lock

        def transfer(a, b, amount):
            with lock:
                fa = d[a]
                if fa >= amount:
                    d[a] = fa - amount
                    d[b] = d[b] + amount
        return transfer, lambda: None

    def total(self):
        return sum(self.d.values())

    def teardown(self):
        self.mgr.shutdown()


class Sqlite:
    def __init__(self, cfg, kind):
        folder = "/dev/shm" if kind == "sqlite-shm" else cfg.dir
        self.path = os.path.join(folder, "%s-%d-%s.db" % (
            cfg.prefix, os.getpid(), kind))
        self.sync = "OFF" if kind == "sqlite-shm" else "FULL"
        self.teardown()
        db = self.connect()
        db.execute("CREATE TABLE acc (id INTEGER PRIMARY KEY, bal INTEGER)")
        db.execute("BEGIN")
        db.executemany("INSERT INTO acc VALUES (?, ?)",
                       ((i, START) for i in range(cfg.accounts)))
        db.execute("COMMIT")
        db.close()

    def connect(self):
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=" + self.sync)
        return db

    def attach(self):
        db = self.connect()
        ex = db.execute

        def transfer(a, b, amount):
            ex("BEGIN IMMEDIATE")
            (fa,) = ex("SELECT bal FROM acc WHERE id = ?", (a,)).fetchone()
            if fa >= amount:
                ex("UPDATE acc SET bal = bal - ? WHERE id = ?", (amount, a))
                ex("UPDATE acc SET bal = bal + ? WHERE id = ?", (amount, b))
            ex("COMMIT")
        return transfer, db.close

    def total(self):
        db = self.connect()
        try:
            return db.execute("SELECT sum(bal) FROM acc").fetchone()[0]
        finally:
            db.close()

    def teardown(self):
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass


class ShmLock:
    def __init__(self, cfg):
        self.accounts = cfg.accounts
        self.shm = shared_memory.SharedMemory(
            name="%s-%d-shm-lock" % (cfg.prefix, os.getpid()), create=True,
            size=8 * cfg.accounts)
        self.lock = CTX.Lock()
        acc = self.shm.buf.cast("q")
        for i in range(cfg.accounts):
            acc[i] = START
        acc.release()

    def attach(self):
        # the forked worker inherits the mapping and the lock
        acc = self.shm.buf.cast("q")
        lock = self.lock

        def transfer(a, b, amount):
            with lock:
                fa = acc[a]
                if fa >= amount:
                    acc[a] = fa - amount
                    acc[b] += amount
        return transfer, acc.release

    def total(self):
        acc = self.shm.buf.cast("q")
        try:
            return sum(acc)
        finally:
            acc.release()

    def teardown(self):
        self.shm.close()
        self.shm.unlink()


class Floor:
    def __init__(self, cfg):
        self.acc = [START] * cfg.accounts
        self.result = None

    def attach(self):
        acc = self.acc

        def transfer(a, b, amount):
            fa = acc[a]
            if fa >= amount:
                acc[a] = fa - amount
                acc[b] += amount
        return transfer, lambda: None

    def total(self):
        return self.result  # checked inside the worker (private list)

    def teardown(self):
        pass


def make(system, cfg):
    if system.startswith("pstm"):
        return Pstm(cfg, system)
    if system.startswith("sqlite"):
        return Sqlite(cfg, system)
    return {"manager": Manager, "shm-lock": ShmLock,
            "floor": Floor}[system](cfg)


# ------------------------------------------------------------ driver

def worker(store, seed, cfg, barrier, conn):
    try:
        ops = ops_for(seed, cfg.accounts)
        transfer, detach = store.attach()
        barrier.wait()
        n = 0
        t0 = time.monotonic()
        deadline = t0 + cfg.duration
        while True:
            k = n & (len(ops) - 1)
            for a, b, amount in ops[k:k + 64]:
                transfer(a, b, amount)
            n += 64
            now = time.monotonic()
            if now >= deadline:
                break
        elapsed = now - t0
        extra = sum(store.acc) if isinstance(store, Floor) else None
        detach()
        conn.send((n, elapsed, extra))
    except BaseException as e:  # noqa: B902  (reported to the driver)
        conn.send(("error", repr(e), None))
        raise
    finally:
        conn.close()


def measure(system, procs, cfg, rnd):
    """One run: tx/s, and whether the total held."""
    store = make(system, cfg)
    try:
        barrier = CTX.Barrier(procs)
        pipes, kids = [], []
        for _ in range(procs):
            r, w = CTX.Pipe(duplex=False)
            p = CTX.Process(target=worker, args=(store, rnd.getrandbits(32),
                                                 cfg, barrier, w))
            p.start()
            w.close()
            pipes.append(r)
            kids.append(p)
        results = [r.recv() for r in pipes]
        for p in kids:
            p.join(30)
        for res in results:
            if res[0] == "error":
                raise RuntimeError("%s worker: %s" % (system, res[1]))
        ops = sum(n for n, _, _ in results)
        elapsed = max(t for _, t, _ in results)
        total = store.total() if system != "floor" else results[0][2]
        return ops / elapsed, total == START * cfg.accounts
    finally:
        store.teardown()


def human(v):
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


def run_all(cfg):
    rates = {}   # (system, procs) -> [tx/s]
    ok = True
    rnd = random.Random(17)
    configs = [(s, p) for p in cfg.procs for s in cfg.systems
               if not (s == "floor" and p > 1)]
    for rd in range(cfg.runs):
        for system, procs in configs:
            rate, held = measure(system, procs, cfg, rnd)
            rates.setdefault((system, procs), []).append(rate)
            if not held:
                ok = False
                print("FAIL: %s P%d total wrong" % (system, procs),
                      file=sys.stderr)
        print("round %d/%d done" % (rd + 1, cfg.runs), file=sys.stderr)
    return rates, ok


DURABLE = ("pstm-file", "sqlite-file")


def reference(system):
    """The pstm row a system is compared with: the durable file region
    for durable systems, the shm region for the others."""
    return "pstm-file" if system in DURABLE else "pstm-shm"


def report(rates, cfg):
    """The medians, min..max and each system's ratio: its pstm reference
    (reference()) divided by it, so 3.00x means pstm ran 3 times as many
    transactions per second, 0.50x half as many."""
    med = {k: statistics.median(v) for k, v in rates.items()}
    if cfg.markdown:
        print("| system |" + "".join(" P%d tx/s | pstm / it |" % p
                                      for p in cfg.procs))
        print("|---|" + "--:|--:|" * len(cfg.procs))
    else:
        print("%-12s" % "system" + "".join(
            "  %10s %17s %9s" % ("P%d median" % p, "min..max", "pstm/it")
            for p in cfg.procs))
    for s in cfg.systems:
        cells = []
        for p in cfg.procs:
            v = rates.get((s, p))
            if not v:
                cells.append(None)
                continue
            m = med[(s, p)]
            ref = (reference(s), p)
            ratio = med[ref] / m if ref in med else float("nan")
            cells.append((m, min(v), max(v), ratio))
        if cfg.markdown:
            print("| %s |" % s + "".join(
                " - | - |" if c is None else " %s | %.2fx |" % (human(c[0]),
                                                              c[3])
                for c in cells))
        else:
            print("%-12s" % s + "".join(
                "  %10s %17s %9s" % ("-", "", "") if c is None else
                "  %10s %17s %8.2fx" % (human(c[0]), "%s..%s" % (
                    human(c[1]), human(c[2])), c[3]) for c in cells))
    print("(pstm / it: pstm-file's rate over it for %s, pstm-shm's for "
          "the others)" % " and ".join(DURABLE))


# ------------------------------------------------------------ breakdown

def breakdown(cfg):
    """Per-transaction cost of pstm's layers, in this process (ns/op)."""
    uri = "shm:%s-%d-breakdown" % (cfg.prefix, os.getpid())
    n = cfg.accounts
    with pstm.create(uri, size=32 << 20, replace=True,
                     log_bytes=1 << 18) as r:
        base = r.atomic(lambda tx: tx.root(8 * n))
        r.atomic(lambda tx: [tx.store64(base + 8 * i, START)
                             for i in range(n)])
        ops = ops_for(1, n)

        def body(tx, a, b, amount):
            fa = tx.load64(base + 8 * a)
            if fa >= amount:
                tx.store64(base + 8 * a, fa - amount)
                tx.store64(base + 8 * b, tx.load64(base + 8 * b) + amount)

        acc = [START] * n

        def plain(a, b, amount):
            fa = acc[a]
            if fa >= amount:
                acc[a] = fa - amount
                acc[b] += amount

        def empty(tx, a, b, amount):
            pass

        atomic = r.atomic
        h = r._h
        cls = pstm.Transaction

        def raw(a, b, amount):
            t = h._begin(cls, r, 1, False)
            fa = t.load64(base + 8 * a)
            if fa >= amount:
                t.store64(base + 8 * a, fa - amount)
                t.store64(base + 8 * b, t.load64(base + 8 * b) + amount)
            t._commit()

        def raw_empty(a, b, amount):
            h._begin(cls, r, 1, False)._commit()

        steps = [
            ("plain list, no sharing (floor)", plain),
            ("region.atomic, empty body",
             lambda a, b, m: atomic(empty, a, b, m)),
            ("_core begin + commit only", raw_empty),
            ("_core begin, 2 load64, 2 store64, commit", raw),
            ("region.atomic(transfer)", lambda a, b, m: atomic(body, a, b, m)),
        ]
        best = {}
        for _ in range(9):        # rounds, each row in each: noise hits all
            for name, step in steps:
                t = time.perf_counter()
                for a, b, amount in ops:
                    step(a, b, amount)
                dt = (time.perf_counter() - t) / len(ops)
                best[name] = min(best.get(name, dt), dt)
        rows = [(name, best[name] * 1e9) for name, _ in steps]
    pstm.unlink(uri)
    print("| what | ns per transaction |")
    print("|---|--:|")
    for name, ns in rows:
        print("| %s | %.0f |" % (name, ns))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--accounts", type=int, default=1024)
    ap.add_argument("--dir", default="/tmp",
                    help="folder of the durable stores (default /tmp)")
    ap.add_argument("--prefix", default="pstm-pybench",
                    help="names of regions, files and segments start so")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--breakdown", action="store_true",
                    help="only time pstm's layers in this process")
    cfg = ap.parse_args()
    cfg.systems = [s for s in cfg.systems.split(",") if s]
    cfg.procs = [int(p) for p in cfg.procs.split(",")]
    for s in cfg.systems:
        if s not in SYSTEMS:
            ap.error("unknown system %r (%s)" % (s, ", ".join(SYSTEMS)))
    if cfg.breakdown:
        breakdown(cfg)
        return 0
    print("bank, %d accounts, %d round(s) of %.1f s, %d CPUs, Python %s, "
          "pstm %s" % (cfg.accounts, cfg.runs, cfg.duration, os.cpu_count(),
                       sys.version.split()[0], pstm.__version__))
    t = time.monotonic()
    rates, ok = run_all(cfg)
    report(rates, cfg)
    print("bench-python: %.0f s%s" % (time.monotonic() - t,
                                      "" if ok else ", INVARIANT FAILURES"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
