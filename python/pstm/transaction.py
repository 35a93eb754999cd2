"""PyPy's ``transaction`` module over pstm, in one process.

    from pstm import transaction

    def deposit(key, amount):
        tx = pstm.current()                  # the task's transaction
        m = tx.map("accounts")
        m[key] = b"%d" % (int(m.get(key, b"0")) + amount)
        if amount > 1:
            transaction.add(deposit, key, amount // 2)   # runs if this commits

    transaction.add(deposit, b"alice", 8)    # outside: pending now
    transaction.run(region)                  # all pending, and what they add

- ``add(f, *args, **kwds)`` puts a task in this process's pending set.
  Called inside a transaction (a body of ``Region.atomic`` or a task), the
  task is added only when, and if, that transaction commits, and it runs
  on that transaction's region.
- ``run(region=None)`` runs every pending task, and all they add, on
  ``set_num_threads(n)`` threads (default 4), in no guaranteed order,
  until none is left.  Each task ``f(*args, **kwds)`` runs as one pstm
  transaction of its region (the one of the transaction that added it,
  else run's ``region``), re-run after conflicts like any body:
  ``pstm.current()`` gives it the Transaction.  A task with neither runs
  under a process-wide lock, one at a time (atomic with respect to the
  others, as in PyPy).  Only region state is transactional: Python
  objects that tasks share are not rolled back when a task re-runs.
- If a task raises, run() waits for the running ones, cancels (drops)
  every pending one and re-raises that first exception in its caller.
- run() inside a transaction raises pstm.InTransaction; a second run()
  while one is active raises pstm.Busy.
"""

import collections
import threading

from . import _core, current, InTransaction, Busy, InvalidArgument

__all__ = ["add", "run", "set_num_threads", "get_num_threads"]

_cond = threading.Condition()
_pending = collections.deque()   # (f, args, kwds, region or None)
_num_threads = 4
_run = None                      # the active run's _State, under _cond
_serial = threading.Lock()       # tasks without a region


class _State:
    def __init__(self, region):
        self.region = region
        self.outstanding = 0     # pending + running tasks of this run
        self.error = None


def set_num_threads(n):
    """The number of threads run() uses (at least 1)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("set_num_threads: an int, not %s" % type(n).__name__)
    if n < 1:
        raise InvalidArgument("set_num_threads: n must be at least 1")
    _num_threads = n


def get_num_threads():
    """The number of threads run() uses."""
    return _num_threads


def _push(task):
    with _cond:
        if _run is not None:
            if _run.error is not None:
                return           # the run is failing: cancelled
            _run.outstanding += 1
        _pending.append(task)
        _cond.notify()


def add(f, *args, **kwds):
    """Add the task f(*args, **kwds); inside a transaction, only if and
    when it commits."""
    if not callable(f):
        raise TypeError("add: f must be callable, not %s" % type(f).__name__)
    tx = current()
    if tx is not None:
        tx.on_commit(_push, (f, args, kwds, tx.region))
    else:
        _push((f, args, kwds, None))


def _execute(task, default_region):
    f, args, kwds, region = task
    region = region or default_region
    if region is None:
        with _serial:
            f(*args, **kwds)
    else:
        region.atomic(lambda tx: f(*args, **kwds))


def _worker(state):
    while True:
        with _cond:
            while not _pending and state.outstanding and state.error is None:
                _cond.wait()
            if state.error is not None or not _pending:
                _cond.notify_all()
                return
            task = _pending.popleft()
        try:
            _execute(task, state.region)
        except BaseException as e:  # noqa: B902  (re-raised by run())
            with _cond:
                if state.error is None:
                    state.error = e
                    state.outstanding -= len(_pending)
                    _pending.clear()
                _cond.notify_all()
        finally:
            with _cond:
                state.outstanding -= 1
                if state.outstanding <= 0:
                    _cond.notify_all()


def run(region=None):
    """Run every pending task and all they add (see the module's doc)."""
    global _run
    if current() is not None or _core.in_tx():
        raise InTransaction("transaction.run() inside a transaction")
    with _cond:
        if _run is not None:
            raise Busy("transaction.run() is already active in this process")
        state = _run = _State(region)
        state.outstanding = len(_pending)
    try:
        threads = [threading.Thread(target=_worker, args=(state,),
                                    name="pstm-transaction-%d" % i,
                                    daemon=True)
                   for i in range(_num_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        with _cond:
            _run = None
    if state.error is not None:
        raise state.error
