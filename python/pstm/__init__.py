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
or register them with ``tx.on_commit(fn, *args)``.

Errors are ``pstm.Error`` subclasses, one per C code (``RegionNotFound``
for PSTM_ENOENT, ``Corrupt``, ``HeapFull``, ...), each with ``.code`` (the
negative PSTM_E* value) and ``.strerror`` (pstm_strerror's text).
Wrong argument types raise ``TypeError``.

Offsets are ints (bytes from the region's start; 0 is null).  A region
handle belongs to the process that opened it: after ``os.fork()`` open
the region again in the child.

``pstm.transaction`` is PyPy's ``transaction`` module (add, run,
set_num_threads) over pstm transactions, in one process.
"""

import collections.abc as _abc
import pickle as _pickle
import threading as _threading

from . import _core
from ._core import (  # noqa: F401  (re-exported)
    Error, InvalidArgument, RegionNotFound, RegionExists, PermissionDenied,
    IOFailure, OutOfMemory, BadMagic, UnsupportedVersion, Corrupt, Truncated,
    TooSmall, ProcessTableFull, SlotsFull, OutOfRange, LogFull, HeapFull,
    InTransaction, Busy, Canceled, NotInTransaction, ClockExhausted,
    EmptyFile, RuntimeVanished, Conflict, RegionClosed, TransactionEnded,
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

# The root object's size when map()/queue() make it (64 words).  A root's
# size is fixed by its first pstm_root call: use tx.root() without a size
# in programs that also use map()/queue(), or make the root first.
ROOT_BYTES = 512

# the transaction running on each thread (flattening, pstm.current())
_local = _threading.local()


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
    return getattr(_local, "tx", None)


class Region:
    """An open region.  A context manager: ``with pstm.open(uri) as r:``
    closes it at the end.  Use from any thread of the process that opened
    it; after close() every use raises RegionClosed."""

    def __init__(self, handle):
        self._h = handle

    @property
    def uri(self):
        return self._h.uri

    @property
    def closed(self):
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
        """
        if not callable(fn):
            raise TypeError("atomic: fn must be callable, not %s"
                            % type(fn).__name__)
        outer = getattr(_local, "tx", None)
        if outer is not None:
            if outer.region is not self:
                raise InTransaction(
                    "atomic: this thread runs a transaction of another region")
            return fn(outer, *args, **kwds)
        attempt = 0
        while True:
            attempt += 1
            a = self._h._begin(read_only)
            tx = Transaction(self, a, attempt)
            _local.tx = tx
            try:
                result = fn(tx, *args, **kwds)
            except _core.Retry:
                a.end()
                continue
            except BaseException:
                a.end()
                if a.conflicted:  # a body that swallowed Retry: run again
                    continue
                raise
            finally:
                _local.tx = None
            try:
                a.commit()
            except _core.Retry:
                continue
            tx._committed()
            return result

    def transactional(self, fn=None, *, read_only=False):
        """Decorator: ``@region.transactional`` makes ``f(*args)`` run
        ``region.atomic(fn, *args)``."""
        def wrap(f):
            def run(*args, **kwds):
                return self.atomic(f, *args, read_only=read_only, **kwds)
            run.__name__ = getattr(f, "__name__", "transaction")
            run.__qualname__ = getattr(f, "__qualname__", run.__name__)
            run.__doc__ = getattr(f, "__doc__", None)
            run.__wrapped__ = f
            return run
        return wrap if fn is None else wrap(fn)


class Transaction:
    """The running transaction, given to a body as its first argument.
    Unusable once its transaction ended (TransactionEnded).  Every method
    may raise the internal retry exception (do not catch BaseException)."""

    __slots__ = ("region", "attempt", "_a", "_on_commit")

    def __init__(self, region, attempt_handle, attempt):
        self.region = region
        self.attempt = attempt  # 1 for the first run of the body, ...
        self._a = attempt_handle
        self._on_commit = []

    @property
    def active(self):
        return self._a.active

    def load64(self, off):
        """The 8-byte word at off (an int)."""
        return self._a.load64(off)

    def store64(self, off, value):
        """Set the word at off to value (0 .. 2**64-1)."""
        self._a.store64(off, value)

    def read(self, off, n):
        """n bytes at off, as bytes."""
        return self._a.read(off, n)

    def write(self, off, data):
        """Write a bytes-like object at off."""
        self._a.write(off, data)

    def root(self, n=ROOT_BYTES):
        """Offset of the region's root object of n bytes (zeroed on first
        use; a later, larger n raises InvalidArgument).  The default,
        ROOT_BYTES, is what map() and queue() ask for."""
        return self._a.root(n)

    def alloc(self, n):
        """Allocate n bytes (16-byte aligned) as part of this transaction."""
        return self._a.alloc(n)

    def free(self, off):
        """Free a block from alloc, once this transaction commits."""
        self._a.free(off)

    def on_commit(self, fn, *args, **kwds):
        """Call fn(*args, **kwds) after this transaction commits (outside
        it, in this thread); dropped if the attempt rolls back."""
        if not self._a.active:
            raise TransactionEnded("the transaction has ended")
        self._on_commit.append((fn, args, kwds))

    def _committed(self):
        hooks, self._on_commit = self._on_commit, []
        for fn, args, kwds in hooks:
            fn(*args, **kwds)

    def _object(self, where, kind, create, buckets):
        """Offset of the map or queue named by where (see map())."""
        a = self._a
        if isinstance(where, bool) or not isinstance(where, (int, str)):
            raise TypeError("a map or queue is named by a root word (int) or "
                            "a name (str), not %s" % type(where).__name__)
        if isinstance(where, int):
            if where < 0 or where > 1 << 20:
                raise OutOfRange("root word %d: 0 .. 2**20" % where)
            slot = a.root(max(ROOT_BYTES, 8 * (where + 1))) + 8 * where
            off = a.load64(slot)
            if off == 0 and create:
                off = (a.map_create(buckets) if kind == _core.DS_MAP
                       else a.queue_create())
                a.store64(slot, off)
            what = "root word %d" % where
        else:
            directory = self._directory()
            key = where.encode()
            v = a.map_get(directory, key)
            off = int.from_bytes(v, "little") if v is not None else 0
            if off == 0 and create:
                off = (a.map_create(buckets) if kind == _core.DS_MAP
                       else a.queue_create())
                a.map_put(directory, key, off.to_bytes(8, "little"))
            what = "name %r" % where
        if off == 0:
            raise KeyError(where)
        if a.ds_type(off) != kind:
            raise InvalidArgument("%s holds no %s" % (
                what, "map" if kind == _core.DS_MAP else "queue"))
        return off

    def _directory(self):
        a = self._a
        slot = a.root(ROOT_BYTES)
        d = a.load64(slot)
        if d == 0:
            d = a.map_create(0)
            a.store64(slot, d)
        elif a.ds_type(d) != _core.DS_MAP:
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
        if self._a.ds_type(off) != _core.DS_MAP:
            raise InvalidArgument("offset %d holds no map" % off)
        return Map(self, off)

    def new_map(self, buckets=0):
        """A new, empty map (keep its .offset somewhere)."""
        return Map(self, self._a.map_create(buckets))

    def new_queue(self):
        """A new, empty queue (keep its .offset somewhere)."""
        return Queue(self, self._a.queue_create())


def _key(k):
    if not isinstance(k, (bytes, bytearray, memoryview)):
        raise TypeError("map keys are bytes, not %s" % type(k).__name__)
    return k


class Map(_abc.MutableMapping):
    """A pstm map as a MutableMapping[bytes, bytes], valid inside the
    transaction that made it.  Iteration walks a snapshot of the keys
    taken in the transaction (and reads the whole map: it conflicts with
    every writer); len() reads one counter per stripe."""

    def __init__(self, tx, off):
        self._tx = tx
        self._a = tx._a
        self.offset = off

    def __getitem__(self, key):
        v = self._a.map_get(self.offset, _key(key))
        if v is None:
            raise KeyError(key)
        return v

    def get(self, key, default=None):
        v = self._a.map_get(self.offset, _key(key))
        return default if v is None else v

    def __setitem__(self, key, value):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("map values are bytes, not %s (pickle_map() "
                            "takes any value)" % type(value).__name__)
        self._a.map_put(self.offset, _key(key), value)

    def __delitem__(self, key):
        if not self._a.map_del(self.offset, _key(key)):
            raise KeyError(key)

    def __contains__(self, key):
        if not isinstance(key, (bytes, bytearray, memoryview)):
            return False
        return self._a.map_get(self.offset, key) is not None

    def __len__(self):
        return self._a.map_count(self.offset)

    def __iter__(self):
        return iter(self._a.map_keys(self.offset))

    def items(self):
        return self._a.map_items(self.offset)

    def __repr__(self):
        return "<pstm.Map @%d>" % self.offset


class PickleMap(_abc.MutableMapping):
    """A pstm map whose keys and values are any picklable objects (stored
    pickled; keys must pickle to the same bytes whenever equal: str,
    bytes, int, tuples of those)."""

    def __init__(self, tx, off):
        self._m = Map(tx, off)
        self.offset = off

    @staticmethod
    def _k(key):
        return _pickle.dumps(key, protocol=4)

    def __getitem__(self, key):
        v = self._m._a.map_get(self.offset, self._k(key))
        if v is None:
            raise KeyError(key)
        return _pickle.loads(v)

    def __setitem__(self, key, value):
        self._m._a.map_put(self.offset, self._k(key),
                           _pickle.dumps(value, protocol=4))

    def __delitem__(self, key):
        if not self._m._a.map_del(self.offset, self._k(key)):
            raise KeyError(key)

    def __contains__(self, key):
        return self._m._a.map_get(self.offset, self._k(key)) is not None

    def __len__(self):
        return len(self._m)

    def __iter__(self):
        return iter([_pickle.loads(k) for k in self._m])

    def __repr__(self):
        return "<pstm.PickleMap @%d>" % self.offset


class Queue:
    """A pstm FIFO queue of bytes, valid inside its transaction."""

    def __init__(self, tx, off):
        self._a = tx._a
        self.offset = off

    def push(self, item):
        """Append a bytes-like item."""
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError("queue items are bytes, not %s"
                            % type(item).__name__)
        self._a.queue_push(self.offset, item)

    def pop(self):
        """Remove and return the oldest item; None if the queue is empty."""
        return self._a.queue_pop(self.offset)

    def __iter__(self):
        """The items, oldest first (a snapshot)."""
        return iter(self._a.queue_items(self.offset))

    def __len__(self):
        return len(self._a.queue_items(self.offset))

    def __repr__(self):
        return "<pstm.Queue @%d>" % self.offset


from . import transaction  # noqa: E402,F401
