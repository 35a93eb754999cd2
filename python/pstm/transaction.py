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

``TransactionQueue(region)`` is the other model (PyPy's 2015 API) over
the region's own task queue: tasks ``f(tx, *args, **kwds)`` stored in the
region by f's importable name with pickled arguments, run by forked
worker processes (and any other process running the queue), each exactly
once even if a worker is killed; see its docstring and python/README.md.
"""

import collections
import threading

from . import _core, current, strerror, InTransaction, Busy, InvalidArgument

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


# ------------------------------------------------------------------
# TransactionQueue: the region's task queue, run by worker processes

import importlib as _importlib
import os as _os
import pickle as _pickle
import signal as _signal
import time as _time
import traceback as _traceback
import types as _types

from . import Error, RegionClosed, Unregistered

__all__ += ["TransactionQueue", "TaskFailed", "WorkerDied",
            "RemoteTraceback", "FailedTask"]


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a worker process: the
    ``__cause__`` of the exception TransactionQueue.run() re-raises (so
    the printed traceback shows both)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return "\n" + self.text


class TaskFailed(Error):
    """A task failed and its exception could not be brought back (it
    failed in a process that run() did not start, or the exception could
    not be pickled).  ``.remote_traceback``: its traceback text, if
    known."""

    remote_traceback = None


class WorkerDied(Error):
    """A worker process of TransactionQueue.run() ended without reporting
    (killed by a signal, ...).  What it was running was rolled back and
    is still queued (or was run by another worker): run() again."""


class FailedTask:
    """A task on the region's failed list (TransactionQueue.failed()).

    ``id``: the task's id, unique in the region and kept when it is
    retried; ``type``: its type's name (``"pstm.py"`` for the tasks of
    TransactionQueue, else a C program's pstm_register name); ``error``:
    what it failed with (``pstm.transaction.TASK_RAISED`` for a Python
    task that raised; a C task's own return value or a PSTM_E* code);
    ``message``: that in words; ``data``: its argument bytes.  For a
    Python task, ``function`` ("module.qualname"), ``args`` and ``kwds``
    are what add() queued (None when the pickle cannot be loaded here,
    or for tasks of other types).  The exception a Python task raised is
    not kept in the region: run() re-raises it in the process that ran
    it."""

    __slots__ = ("id", "type", "error", "data", "function", "args", "kwds")

    def __init__(self, id, type, error, data):
        self.id, self.type, self.error, self.data = id, type, error, data
        self.function = self.args = self.kwds = None
        if type == _core.TASK_TYPE:
            try:
                module, qualname, args, kwds = _pickle.loads(data)
                self.function = "%s.%s" % (module, qualname)
                self.args, self.kwds = args, kwds
            except Exception:  # noqa: B902  (any pickle: left as bytes)
                pass

    @property
    def message(self):
        if self.error == _core.TASK_RAISED and self.type == _core.TASK_TYPE:
            return "the task raised a Python exception"
        return strerror(self.error)

    def __repr__(self):
        what = self.function or self.type
        return "<FailedTask %x %s: %s>" % (self.id, what, self.message)


# the error of a Python task that raised (on the failed list)
TASK_RAISED = _core.TASK_RAISED


def _name_of(f):
    """(module, qualname) naming f, refused (TypeError) unless importing
    module and following qualname gives f back."""
    if not callable(f):
        raise TypeError("add: f must be callable, not %s" % type(f).__name__)
    if not isinstance(f, (_types.FunctionType, _types.BuiltinFunctionType,
                          type)):
        raise TypeError("add: f must be a function (or class) defined at "
                        "the top level of a module, not %s"
                        % type(f).__name__)
    module = getattr(f, "__module__", None)
    qualname = getattr(f, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError("add: %r has no importable name (module and "
                        "qualname)" % (f,))
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TypeError("add: %s.%s is a %s: a task is stored by its "
                        "importable name, so define f at the top level "
                        "of a module" % (module, qualname,
                                         "lambda" if "<lambda>" in qualname
                                         else "nested function"))
    try:
        obj = _importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise TypeError("add: %s.%s cannot be imported by that name: %s"
                        % (module, qualname, e)) from None
    if obj is not f:
        raise TypeError("add: %s.%s names another object than f"
                        % (module, qualname))
    return module, qualname


def _encode(f, args, kwds):
    module, qualname = _name_of(f)
    try:
        return _pickle.dumps((module, qualname, args, kwds), protocol=4)
    except Exception as e:  # noqa: B902  (pickle raises many kinds)
        raise TypeError("add: the arguments of %s.%s cannot be pickled: "
                        "%s: %s" % (module, qualname, type(e).__name__, e)) \
            from e


def _resolve(module, qualname):
    obj = _importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# the first exception a task raised in this (worker) process
_task_error = None


def _run_task(tx, data):
    """Called by _core for each attempt of a task: f(tx, *args, **kwds).
    A task that raises (other than losing a conflict) fails: the first
    such exception of the process is kept for run()'s caller."""
    global _task_error
    try:
        module, qualname, args, kwds = _pickle.loads(data)
        _resolve(module, qualname)(tx, *args, **kwds)
    except BaseException as e:  # noqa: B902  (re-raised)
        if not tx.conflicted and not isinstance(e, _core.Retry) \
                and _task_error is None:
            try:
                exc = _pickle.dumps(e, protocol=4)
                _pickle.loads(exc)
            except Exception:  # noqa: B902
                exc = None
            _task_error = {
                "time": _time.monotonic(), "exc": exc, "repr": repr(e),
                "tb": "".join(_traceback.format_exception(
                    type(e), e, e.__traceback__)),
            }
        raise


_core._setup_tasks(_run_task)


def _register(region):
    if region.closed:
        raise RegionClosed("region is closed")
    if not getattr(region, "_tq_registered", False):
        region._h._register()
        region._tq_registered = True


def _tq_worker(uri, wfd):
    """A forked worker: open the region, run the queue on one thread,
    report {rc, executed, error} through wfd; never returns."""
    global _task_error
    _task_error = None
    report = {"rc": None, "executed": 0, "error": None}
    try:
        # Ctrl-C kills a worker (its task rolls back) rather than raising
        # KeyboardInterrupt in a task, which would fail the task
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        from . import open as _open
        region = _open(uri)
        try:
            _register(region)
            before = _core._tasks_committed()
            report["rc"] = region._h._queue_run(region, 1)
            report["executed"] = _core._tasks_committed() - before
            report["error"] = _task_error
        finally:
            region.close()
    except BaseException as e:  # noqa: B902  (reported to the parent)
        report["error"] = report["error"] or {
            "time": _time.monotonic(), "exc": None, "repr": repr(e),
            "tb": "".join(_traceback.format_exception(
                type(e), e, e.__traceback__))}
    try:
        data = _pickle.dumps(report, protocol=4)
        while data:
            data = data[_os.write(wfd, data):]
    finally:
        _os._exit(0)


def _reraise(err):
    exc = None
    if err["exc"] is not None:
        try:
            exc = _pickle.loads(err["exc"])
        except Exception:  # noqa: B902
            exc = None
    if not isinstance(exc, BaseException):
        exc = TaskFailed("a task raised %s (it could not be brought back "
                         "from the worker)" % err["repr"])
    exc.remote_traceback = err["tb"]
    raise exc from RemoteTraceback(err["tb"])


class TransactionQueue:
    """The region's task queue, run by worker processes (PyPy's
    ``transaction.TransactionQueue`` across processes)::

        from pstm.transaction import TransactionQueue

        def visit(tx, node, depth):              # at module level
            c = tx.pickle_map("count")
            c[node] = c.get(node, 0) + 1
            if depth:
                tx.enqueue(visit, 2 * node, depth - 1)
                tx.enqueue(visit, 2 * node + 1, depth - 1)

        q = TransactionQueue(region)
        q.add(visit, 1, 10)
        q.run(processes=4)

    The tasks live in the region (pstm_enqueue): any process that runs
    the queue runs what any process added, and each task runs exactly
    once, also when a worker process is killed (its task rolls back and
    another worker runs it).  See add() and run(); a task that raised
    goes to the failed list: failed(), retry_failed(), drop_failed().
    """

    def __init__(self, region):
        """Use region's task queue (makes the queue in the region on first
        use: one small transaction, ~50 KiB of heap).  Not inside a
        transaction (InTransaction)."""
        from . import Region
        if not isinstance(region, Region):
            raise TypeError("TransactionQueue(region): a pstm.Region, not %s"
                            % type(region).__name__)
        _register(region)
        self.region = region
        self._executed = 0

    def add(self, f, *args, **kwds):
        """Queue the task ``f(tx, *args, **kwds)``.

        f is stored by its importable name (module and qualname): a
        function or class at the top level of a module; a lambda, a
        nested function or a method raises TypeError.  The arguments are
        pickled now (protocol 4): an unpicklable one raises TypeError.
        Either way nothing is queued.  Outside a transaction the task is
        queued in its own transaction when add() returns; inside one of
        this region's transactions (a ``region.atomic`` body, or a task)
        it is part of that transaction: queued if and when it commits,
        never if it rolls back (the same as ``tx.enqueue``).  RegionClosed
        once the region is closed; InvalidArgument for a pickle larger
        than 1 MiB.
        """
        data = _encode(f, args, kwds)
        if self.region.closed:
            raise RegionClosed("region is closed")
        tx = current()
        if tx is None:
            self.region._h._enqueue(data)
        elif tx.region is not self.region:
            raise InTransaction("add: this thread runs a transaction of "
                                "another region")
        else:
            tx._enqueue(data)

    def run(self, processes=None):
        """Run the queue's tasks in ``processes`` forked worker processes
        (default os.cpu_count()), each running pstm_queue_run on one
        thread, together with any other process running this region's
        queue, until no task is left (or only tasks of types that no
        Python process runs).

        Each task runs as ``f(tx, *args, **kwds)`` inside its own
        transaction, like a ``region.atomic`` body: it may run several
        times (conflicts re-run it from the start); tasks it adds with
        ``tx.enqueue`` are queued when it commits.  Workers import f's
        module by name (forked: whatever the caller imported is there).

        If a task raises, its effects are discarded, it goes to the
        queue's failed list (``pstm queue URI`` shows it), every worker
        stops after the task it is running, and run() re-raises the
        first exception (the one raised earliest) in the caller, with
        its original traceback text as ``__cause__`` (a RemoteTraceback)
        and ``.remote_traceback``; the tasks not run stay queued.  While
        the failed list is not empty the queue does not run: run()
        raises TaskFailed at once, until retry_failed() or drop_failed()
        (or ``pstm queue URI --retry-failed | --drop-failed``); failed()
        lists them.  A task failed in a
        process that this run did not start raises TaskFailed.  A worker
        that dies (killed) raises WorkerDied once the others finished:
        its task was rolled back, so run() again to finish the queue.
        Interrupted (KeyboardInterrupt), it kills its workers (their
        tasks roll back) and re-raises.  Not inside a transaction
        (InTransaction).
        """
        if current() is not None or _core.in_tx():
            raise InTransaction("TransactionQueue.run() inside a transaction")
        if processes is None:
            processes = _os.cpu_count() or 1
        if isinstance(processes, bool) or not isinstance(processes, int):
            raise TypeError("run: processes must be an int, not %s"
                            % type(processes).__name__)
        if processes < 1:
            raise InvalidArgument("run: processes must be at least 1")
        if self.region.closed:
            raise RegionClosed("region is closed")
        uri = self.region.uri
        children = []
        try:
            for _ in range(processes):
                rfd, wfd = _os.pipe()
                pid = _os.fork()
                if pid == 0:
                    _os.close(rfd)
                    _tq_worker(uri, wfd)   # never returns
                _os.close(wfd)
                children.append((pid, rfd))
        except BaseException:
            for pid, rfd in children:
                _os.close(rfd)
                _os.waitpid(pid, 0)
            raise
        reports, died = [], []
        try:
            while children:
                pid, rfd = children[0]
                chunks = []
                while True:
                    chunk = _os.read(rfd, 65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                _os.close(rfd)
                _, status = _os.waitpid(pid, 0)
                children.pop(0)
                try:
                    reports.append(_pickle.loads(b"".join(chunks)))
                except Exception:  # noqa: B902  (no report: it died)
                    died.append((pid, status))
        except BaseException:
            # interrupted (KeyboardInterrupt, ...): stop the workers; a
            # killed worker's task rolls back, so nothing runs twice
            for pid, rfd in children:
                try:
                    _os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid, rfd in children:
                try:
                    _os.close(rfd)
                except OSError:
                    pass
                _os.waitpid(pid, 0)
            raise
        self._executed += sum(r["executed"] for r in reports)
        errors = [r["error"] for r in reports if r["error"]]
        if errors:
            _reraise(min(errors, key=lambda e: e["time"]))
        if died:
            pid, status = died[0]
            raise WorkerDied("worker process %d %s" % (
                pid, "was killed by signal %d" % _os.WTERMSIG(status)
                if _os.WIFSIGNALED(status) else
                "exited with status %d" % _os.WEXITSTATUS(status)))
        for r in reports:
            rc = r["rc"]
            if rc in (0, None) or rc == Unregistered.code:
                continue
            if rc == _core.TASK_RAISED:
                raise TaskFailed("a task failed (in a process this run did "
                                 "not start, or earlier): the queue stays "
                                 "stopped until its failed tasks are "
                                 "retried or dropped (failed(), "
                                 "retry_failed(), drop_failed(); pstm "
                                 "queue %s --retry-failed | --drop-failed)"
                                 % uri)
            raise _error_for(rc)

    def failed(self):
        """The tasks on the region's failed list, newest first, as
        FailedTask objects (id, type, error, message, data; for Python
        tasks function, args, kwds): what ``pstm queue URI`` lists.  The
        failed tasks of every process and language are there; while the
        list is not empty the queue does not run (run() raises
        TaskFailed).  One read-only transaction for the list, one per
        task for its argument.  Not inside a transaction
        (InTransaction)."""
        self._outside("failed")
        return [FailedTask(*t) for t in self.region._h._failed()]

    def retry_failed(self):
        """Put every failed task back in the queue, to run again at the
        next run() (here or in any process running the queue); returns
        how many.  A Python task runs again with the arguments add()
        gave it: fix what made it raise first (its function is found by
        name, so new code in the worker's import runs).  Not inside a
        transaction (InTransaction)."""
        self._outside("retry_failed")
        return self.region._h._retry_failed()

    def drop_failed(self):
        """Delete every failed task (never run; its argument is freed);
        returns how many.  The queue then runs again.  Not inside a
        transaction (InTransaction)."""
        self._outside("drop_failed")
        return self.region._h._drop_failed()

    def _outside(self, what):
        if current() is not None or _core.in_tx():
            raise InTransaction("TransactionQueue.%s() inside a transaction"
                                % what)
        if self.region.closed:
            raise RegionClosed("region is closed")

    def number_of_transactions_executed(self):
        """The number of tasks that this object's run() calls executed
        (committed, in the worker processes they started)."""
        return self._executed


def _error_for(code):
    """A pstm.Error (subclass) for a PSTM_E* code a worker returned."""
    for name in dir(_core):
        cls = getattr(_core, name)
        if isinstance(cls, type) and issubclass(cls, Error) \
                and getattr(cls, "code", None) == code:
            e = cls(strerror(code))
            break
    else:
        e = TaskFailed("a task failed with error %d (%s)"
                       % (code, strerror(code)))
    e.code = code
    e.strerror = strerror(code)
    return e
