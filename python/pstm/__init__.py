"""pstm: persistent software transactional memory shared by processes.

A region is shared memory (``shm:NAME``) or a file that several processes
open at once; code changes it in transactions that behave as if all
transactions of all processes ran one after another::

    import pstm

    with pstm.create("shm:bank", size=16 << 20) as region:
        @region.transactional
        def transfer(tx, src, dst, amount):
            accounts = tx.map("accounts")          # MutableMapping[bytes, bytes]
            a = int(accounts.get(src, b"0"))
            if a >= amount:
                accounts[src] = b"%d" % (a - amount)
                accounts[dst] = b"%d" % (int(accounts.get(dst, b"0")) + amount)

        transfer(b"alice", b"bob", 10)

A body ``fn(tx, *args)`` may run several times: when it loses a conflict
with another transaction, the binding unwinds it (an internal exception
that is not an ``Exception``), rolls it back and runs it again.  Any other
exception rolls it back and propagates.  Keep side effects out of bodies,
or register them with ``tx.on_commit(fn, *args)`` (after the commit) and
``tx.on_abort(fn, *args)`` (after each rollback); ``tx.inevitable()``
makes a transaction that will not roll back on a conflict, so it may do
I/O itself.

Errors are ``pstm.Error`` subclasses, one per C code (``RegionNotFound``
for PSTM_ENOENT, ``Corrupt``, ``HeapFull``, ...), each with ``.code`` (the
negative PSTM_E* value) and ``.strerror`` (pstm_strerror's text).
Wrong argument types raise ``TypeError``.

Offsets are ints (bytes from the region's start; 0 is null).  A region
handle belongs to the process that opened it: after ``os.fork()`` open
the region again in the child.

``pstm.transaction`` is PyPy's ``transaction`` module (add, run,
set_num_threads) over pstm transactions, in one process, and its
``TransactionQueue(region)``: the region's task queue, run by forked
worker processes, each task exactly once.

python/README.md in the source tree is the manual.
"""

import collections.abc as _abc
import pickle as _pickle
import sys as _sys

from . import _core
from ._core import (  # noqa: F401  (re-exported)
    Error, InvalidArgument, RegionNotFound, RegionExists, PermissionDenied,
    IOFailure, OutOfMemory, BadMagic, UnsupportedVersion, Corrupt, Truncated,
    TooSmall, ProcessTableFull, SlotsFull, OutOfRange, LogFull, HeapFull,
    InTransaction, Busy, Canceled, NotInTransaction, ClockExhausted,
    EmptyFile, RuntimeVanished, Conflict, RegionClosed, TransactionEnded,
    Unregistered, TypesFull, RegionReplaced,
)

__version__ = _core.version
__all__ = [
    "create", "open", "unlink", "Region", "Transaction", "Map", "PickleMap",
    "Queue", "current", "strerror", "Error", "transaction",
] + [n for n in dir(_core) if isinstance(getattr(_core, n), type)
     and issubclass(getattr(_core, n), Error)]

_DURABILITY = {
    None: 0, "default": 0, "volatile": _core.VOLATILE,
    "durable": _core.DURABLE, "relaxed": _core.RELAXED,
}

_KIND = {_core.DS_MAP: "map", _core.DS_QUEUE: "queue"}

# The root object's size when map()/queue() make it (64 words).  A root's
# size is fixed by its first pstm_root call: use tx.root() without a size
# in programs that also use map()/queue(), or make the root first.
ROOT_BYTES = 512


def strerror(code):
    """pstm_strerror's text for a PSTM_E* code (or a positive errno)."""
    return _core.strerror(code)


def create(uri, size=0, durability="default", *, mode=0, replace=False,
           max_procs=0, max_threads=0, log_bytes=0, flush_ms=0):
    """Create a region and open it; returns a Region.

    uri: ``"shm:NAME"`` (POSIX shared memory) or a file path.  size: bytes
    (0: 64 MiB; at least 1 MiB).  durability: ``"volatile"``, ``"durable"``
    (files: commits survive power failure), ``"relaxed"`` (files: commits
    reach the file within flush_ms, in order) or ``"default"`` (volatile
    for shm:, durable for files).  replace: replace an existing region
    (else RegionExists).  The other options are pstm_create_opts'.
    """
    if durability not in _DURABILITY:
        raise InvalidArgument(
            "durability: 'volatile', 'durable', 'relaxed' or 'default', "
            "not %r" % (durability,))
    return Region(_core.create(uri, size=size,
                               durability=_DURABILITY[durability], mode=mode,
                               replace=bool(replace), max_procs=max_procs,
                               max_threads=max_threads, log_bytes=log_bytes,
                               flush_ms=flush_ms))


def open(uri):  # noqa: A001  (pstm.open, as the C API)
    """Open an existing region (RegionNotFound if there is none); returns a
    Region.  Recovers what dead processes left behind."""
    return Region(_core.open(uri))


def unlink(uri):
    """Remove a region by URI."""
    _core.unlink(uri)


def current():
    """The Transaction running on this thread, or None."""
    return _core.current()


class Region:
    """An open region.  A context manager: ``with pstm.open(uri) as r:``
    closes it at the end.  Use from any thread of the process that opened
    it; after close() every use raises RegionClosed."""

    def __init__(self, handle):
        self._h = handle
        # name -> (offset, kind) of the directory's entries, filled when a
        # transaction that found or made one commits (entries are never
        # removed, so a committed one stays true)
        self._names = {}
        # (offset, n) of the root once a transaction that asked for n
        # bytes of it committed: it never moves or shrinks
        self._root = None

    @property
    def uri(self):
        """The URI the region was created or opened with."""
        return self._h.uri

    @property
    def closed(self):
        """Whether close() ran."""
        return self._h.closed

    def close(self):
        """Detach and unmap (idempotent).  InTransaction while one of its
        transactions runs."""
        self._h.close()

    def __enter__(self):
        if self._h.closed:
            raise RegionClosed("region is closed")
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<pstm.Region %r%s>" % (self.uri,
                                       " closed" if self.closed else "")

    def info(self):
        """A dict: size_bytes, heap_off, heap_bytes, durability, ..."""
        return self._h.info()

    def stats(self):
        """This process's counters: commits, aborts_*, escalations, ..."""
        return self._h.stats()

    def sync(self):
        """Make every committed transaction durable (relaxed regions)."""
        self._h.sync()

    def atomic(self, fn, *args, read_only=False, **kwds):
        """Run ``fn(tx, *args, **kwds)`` as one transaction and return its
        result.

        Re-runs fn from the start when it loses a conflict (until it
        commits).  An exception from fn rolls the transaction back (no
        write of it becomes visible) and propagates.  Called inside a
        transaction of the same region, fn joins it (flattened, as
        pstm_atomic); of another region: InTransaction.  read_only=True:
        a read-only transaction (a write raises InvalidArgument).

        Hooks (``tx.on_commit``, ``tx.on_abort``) run after the attempt
        ended, outside any transaction; see Transaction.on_commit for
        what an exception in one does.
        """
        return self._h._atomic(self, fn, args, kwds, read_only)

    def transactional(self, fn=None, *, read_only=False):
        """Decorator: ``@region.transactional`` makes ``f(*args)`` run
        ``region.atomic(fn, *args)``."""
        def wrap(f):
            if not callable(f):
                raise TypeError("transactional: not callable: %s"
                                % type(f).__name__)

            def run(*args, **kwds):
                return self._h._atomic(self, f, args, kwds, read_only)
            run.__name__ = getattr(f, "__name__", "transaction")
            run.__qualname__ = getattr(f, "__qualname__", run.__name__)
            run.__doc__ = getattr(f, "__doc__", None)
            run.__wrapped__ = f
            return run
        return wrap if fn is None else wrap(fn)


def _run_hooks(tx, which, exc):
    """Run the hooks of tx's list `which` in order, all of them; re-raise
    the first exception once they ran (later ones go to
    sys.unraisablehook).  exc: the exception that rolled the attempt back
    (the context of a hook's), or None.  Called by _core's atomic loop."""
    hooks = getattr(tx, which)
    setattr(tx, which, None)
    tx._on_commit = tx._on_abort = None  # the other list is dropped
    first = None
    for fn, args, kwds in hooks:
        try:
            fn(*args, **kwds)
        except BaseException as e:  # noqa: B902  (re-raised below)
            if first is None:
                first = e
            else:
                _sys.unraisablehook(_Unraisable(
                    type(e), e, e.__traceback__,
                    "Exception ignored in a pstm %s hook (an earlier one "
                    "raised)" % which[4:], fn))
    if first is not None:
        if exc is not None and first.__context__ is None:
            first.__context__ = exc
        if hasattr(first, "add_note"):
            first.add_note(
                "(raised by a pstm %s hook: the transaction %s)"
                % (which[4:], "committed" if which == "_on_commit"
                   else "was rolled back"))
        raise first


class _Unraisable:
    """The argument of sys.unraisablehook."""

    def __init__(self, exc_type, exc_value, exc_traceback, err_msg, obj):
        self.exc_type = exc_type
        self.exc_value = exc_value
        self.exc_traceback = exc_traceback
        self.err_msg = err_msg
        self.object = obj


def _root_known(region, off, n):
    if region._root is None or n > region._root[1]:
        region._root = (off, n)


def _hook(tx, which, fn, args, kwds):
    if not tx.active:
        raise TransactionEnded("the transaction has ended")
    if not callable(fn):
        raise TypeError("%s: fn must be callable, not %s"
                        % (which[1:], type(fn).__name__))
    hooks = getattr(tx, which)
    if hooks is None:
        hooks = []
        setattr(tx, which, hooks)
    hooks.append((fn, args, kwds))


class Transaction(_core.Attempt):
    """The running transaction, given to a body as its first argument.

    Made by Region.atomic (one per attempt: a body that runs again gets a
    new one); unusable once its attempt ended (TransactionEnded), from
    another thread (InvalidArgument) or in a forked child.

    Attributes: ``region`` (the Region), ``attempt`` (1 for the first run
    of the body, 2 after one conflict, ...), ``active``, ``conflicted``
    (a call lost a conflict: the attempt is rolled back and the body is
    being unwound), ``is_inevitable``.

    Words and bytes (offsets are ints; the heap is Region.info()'s
    heap_off .. heap_off + heap_bytes): ``load64(off)``,
    ``store64(off, value)``, ``read(off, n)``, ``write(off, data)``,
    ``alloc(n)``, ``free(off)``; the root object: ``root(n)``.  Maps and
    queues: ``map()``, ``pickle_map()``, ``queue()``, ``map_at()``,
    ``new_map()``, ``new_queue()``.  Hooks: ``on_commit()``,
    ``on_abort()``; ``inevitable()``.  The region's task queue:
    ``enqueue()`` (see pstm.transaction.TransactionQueue).  Conflict
    reports: ``set_name(name)`` (``pstm conflicts URI``).

    Every method may raise the binding's internal retry exception (a
    BaseException): do not catch BaseException in a body, or re-raise it.
    Out-of-range offsets raise OutOfRange, words outside 0 .. 2**64-1
    OverflowError, wrong types TypeError.
    """

    __slots__ = ()

    def root(self, n=ROOT_BYTES):
        """Offset of the region's root object of n bytes (zeroed on first
        use; a later, larger n raises InvalidArgument).  The default,
        ROOT_BYTES, is what map() and queue() ask for.  Once a root of n
        bytes is known to have committed, this reads nothing (so it never
        conflicts)."""
        region = self.region
        known = region._root
        if known is not None and type(n) is int and 0 <= n <= known[1]:
            return known[0]
        off = self._root(n)
        if known is None or n > known[1]:
            self.on_commit(_root_known, region, off, n)
        return off

    def on_commit(self, fn, *args, **kwds):
        """Call fn(*args, **kwds) once this transaction has committed.

        It runs in this thread, after the commit, outside any transaction
        (it may do I/O and run transactions); hooks run in the order they
        were registered.  Dropped if the attempt rolls back (a body that
        runs again registers its hooks again).  In a nested atomic() the
        hook belongs to the outer transaction.

        If a hook raises, the later hooks still run, then the first
        exception propagates out of Region.atomic() (with a note saying
        the transaction committed: its writes stay); exceptions of later
        hooks go to sys.unraisablehook.
        """
        _hook(self, "_on_commit", fn, args, kwds)

    def on_abort(self, fn, *args, **kwds):
        """Call fn(*args, **kwds) each time this attempt is rolled back.

        After a lost conflict (before the body runs again) or an
        exception (before it propagates out of Region.atomic()); in this
        thread, outside any transaction, in registration order.  Dropped
        if the transaction commits.

        If a hook raises, the later hooks still run, then the first
        exception propagates out of Region.atomic() (chained to the
        body's exception, if any) and the body is not run again: nothing
        of the transaction was committed.
        """
        _hook(self, "_on_abort", fn, args, kwds)

    def enqueue(self, f, *args, **kwds):
        """Queue the task ``f(tx, *args, **kwds)`` in the region's task
        queue as part of this transaction: it exists if and when this
        transaction commits, never if it rolls back (a body that runs
        again enqueues again).  f and the arguments as for
        ``pstm.transaction.TransactionQueue.add`` (TypeError for a lambda,
        a nested function or unpicklable arguments; nothing queued).  The
        region needs a TransactionQueue made once (in any process) before
        a transaction enqueues: else InvalidArgument."""
        from .transaction import _encode
        data = _encode(f, args, kwds)
        try:
            self._enqueue(data)
        except RegionNotFound:
            raise InvalidArgument(
                "enqueue: make a pstm.transaction.TransactionQueue(region) "
                "first (outside a transaction)") from None

    def _object(self, where, kind, create, buckets):
        """Offset of the map or queue named by where (see map())."""
        if type(where) is str:
            known = self.region._names.get(where)
            if known is not None:
                if known[1] != kind:
                    raise InvalidArgument("name %r holds no %s"
                                          % (where, _KIND[kind]))
                return known[0]
        if isinstance(where, bool) or not isinstance(where, (int, str)):
            raise TypeError("a map or queue is named by a root word (int) or "
                            "a name (str), not %s" % type(where).__name__)
        if isinstance(where, int):
            if where < 0 or where > 1 << 20:
                raise OutOfRange("root word %d: 0 .. 2**20" % where)
            slot = self.root(max(ROOT_BYTES, 8 * (where + 1))) + 8 * where
            off = self.load64(slot)
            if off == 0 and create:
                off = self._new(kind, buckets)
                self.store64(slot, off)
        else:
            directory = self._directory()
            key = where.encode()
            v = self._map_get(directory, key)
            off = int.from_bytes(v, "little") if v is not None else 0
            if off == 0 and create:
                off = self._new(kind, buckets)
                self._map_put(directory, key, off.to_bytes(8, "little"))
        if off == 0:
            raise KeyError(where)
        found = self._ds_type(off)
        if type(where) is str and found in _KIND:
            self.on_commit(self.region._names.__setitem__, where,
                           (off, found))
        if found != kind:
            raise InvalidArgument("%s holds no %s" % (
                "root word %d" % where if isinstance(where, int)
                else "name %r" % where, _KIND[kind]))
        return off

    def _new(self, kind, buckets):
        return (self._map_create(buckets) if kind == _core.DS_MAP
                else self._queue_create())

    def _directory(self):
        """Offset of the name directory (root word 0), made if absent."""
        slot = self.root(ROOT_BYTES)
        d = self.load64(slot)
        if d == 0:
            d = self._map_create(0)
            self.store64(slot, d)
        elif self._ds_type(d) != _core.DS_MAP:
            raise InvalidArgument("root word 0 holds no name directory map")
        return d

    def map(self, where, create=True, buckets=0):
        """The map in root word where (an int) or named where (a str), as a
        Map (MutableMapping[bytes, bytes]); made if absent and create.
        Names live in a directory map in root word 0 (name -> offset):
        a program that uses names keeps its own root words from 1.  Makes
        the root with ROOT_BYTES (or 8 * (where + 1)) bytes if it has none:
        a root made smaller before raises InvalidArgument."""
        return Map(self, self._object(where, _core.DS_MAP, create, buckets))

    def pickle_map(self, where, create=True, buckets=0):
        """Like map(), as a PickleMap: keys and values pickled."""
        return PickleMap(self, self._object(where, _core.DS_MAP, create,
                                            buckets))

    def queue(self, where, create=True):
        """The FIFO queue in root word where (int) or named where (str)."""
        return Queue(self, self._object(where, _core.DS_QUEUE, create, 0))

    def map_at(self, off):
        """The map whose object is at offset off."""
        if self._ds_type(off) != _core.DS_MAP:
            raise InvalidArgument("offset %d holds no map" % off)
        return Map(self, off)

    def new_map(self, buckets=0):
        """A new, empty map (keep its .offset somewhere)."""
        return Map(self, self._map_create(buckets))

    def new_queue(self):
        """A new, empty queue (keep its .offset somewhere)."""
        return Queue(self, self._queue_create())


class Map(_abc.MutableMapping):
    """A pstm map as a MutableMapping[bytes, bytes], valid inside the
    transaction that made it.  Iteration walks a snapshot of the keys
    taken in the transaction (and reads the whole map: it conflicts with
    every writer); len() reads one counter per stripe."""

    __slots__ = ("_a", "offset")

    def __init__(self, tx, off):
        self._a = tx
        self.offset = off

    def __getitem__(self, key):
        v = self._a._map_get(self.offset, key)
        if v is None:
            raise KeyError(key)
        return v

    def get(self, key, default=None):
        """The value of key (bytes), or default if absent."""
        v = self._a._map_get(self.offset, key)
        return default if v is None else v

    def __setitem__(self, key, value):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("map values are bytes, not %s (pickle_map() "
                            "takes any value)" % type(value).__name__)
        self._a._map_put(self.offset, key, value)

    def __delitem__(self, key):
        if not self._a._map_del(self.offset, key):
            raise KeyError(key)

    def __contains__(self, key):
        if not isinstance(key, (bytes, bytearray, memoryview)):
            return False
        return self._a._map_get(self.offset, key) is not None

    def __len__(self):
        return self._a._map_count(self.offset)

    def __iter__(self):
        return iter(self._a._map_keys(self.offset))

    def items(self):
        """All (key, value) pairs, as a list: one walk of the map (a
        snapshot taken in the transaction)."""
        return self._a._map_items(self.offset)

    def values(self):
        """All values, as a list: one walk of the map."""
        return [v for _, v in self._a._map_items(self.offset)]

    def __repr__(self):
        return "<pstm.Map @%d>" % self.offset


class PickleMap(_abc.MutableMapping):
    """A pstm map whose keys and values are any picklable objects, valid
    inside the transaction that made it.

    Both are stored pickled (protocol 4), so keys must pickle to the same
    bytes whenever they are equal: str, bytes, int, None, and tuples of
    those are safe; 1 and 1.0, or dicts and sets, are not.  Values are
    copies: change one and store it again.  An unpicklable key or value
    raises pickle's exception, which rolls the transaction back.
    Unpickling runs code named by the data: use it only on regions that
    only trusted processes can write.
    """

    __slots__ = ("_a", "offset")

    def __init__(self, tx, off):
        self._a = tx
        self.offset = off

    @staticmethod
    def _k(key):
        return _pickle.dumps(key, protocol=4)

    def __getitem__(self, key):
        v = self._a._map_get(self.offset, self._k(key))
        if v is None:
            raise KeyError(key)
        return _pickle.loads(v)

    def get(self, key, default=None):
        """The value of key, or default if absent."""
        v = self._a._map_get(self.offset, self._k(key))
        return default if v is None else _pickle.loads(v)

    def __setitem__(self, key, value):
        self._a._map_put(self.offset, self._k(key),
                         _pickle.dumps(value, protocol=4))

    def __delitem__(self, key):
        if not self._a._map_del(self.offset, self._k(key)):
            raise KeyError(key)

    def __contains__(self, key):
        return self._a._map_get(self.offset, self._k(key)) is not None

    def __len__(self):
        return self._a._map_count(self.offset)

    def __iter__(self):
        return iter([_pickle.loads(k)
                     for k in self._a._map_keys(self.offset)])

    def items(self):
        """All (key, value) pairs, as a list: one walk of the map."""
        return [(_pickle.loads(k), _pickle.loads(v))
                for k, v in self._a._map_items(self.offset)]

    def values(self):
        """All values, as a list: one walk of the map."""
        return [_pickle.loads(v) for _, v in self._a._map_items(self.offset)]

    def __repr__(self):
        return "<pstm.PickleMap @%d>" % self.offset


class Queue:
    """A pstm FIFO queue of bytes, valid inside the transaction that made
    it.  Pushes of concurrent transactions conflict with each other (one
    tail); a push and a pop conflict only when the queue holds at most one
    item."""

    __slots__ = ("_a", "offset")

    def __init__(self, tx, off):
        self._a = tx
        self.offset = off

    def push(self, item):
        """Append a bytes-like item (LogFull if longer than the
        transaction's redo log holds)."""
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError("queue items are bytes, not %s"
                            % type(item).__name__)
        self._a._queue_push(self.offset, item)

    def pop(self):
        """Remove and return the oldest item; None if the queue is empty."""
        return self._a._queue_pop(self.offset)

    def __iter__(self):
        """The items, oldest first (a snapshot: one walk of the queue)."""
        return iter(self._a._queue_items(self.offset))

    def __len__(self):
        """The number of items (walks the queue)."""
        return len(self._a._queue_items(self.offset))

    def __repr__(self):
        return "<pstm.Queue @%d>" % self.offset


_core._setup(Transaction, _run_hooks)

from . import transaction  # noqa: E402,F401
