"""Bad input raises the right pstm.Error subclass (or TypeError); the
interpreter never crashes."""
import os
import threading

import pytest

import pstm
from pstm import _core


def test_every_code_has_a_class_with_code_and_text():
    seen = set()
    for name in dir(_core):
        cls = getattr(_core, name)
        if isinstance(cls, type) and issubclass(cls, pstm.Error) and \
                cls is not pstm.Error and "code" in cls.__dict__:
            assert getattr(pstm, name) is cls
            seen.add(cls.code)
    assert seen == set(range(-1027, -1000))   # PSTM_ERR_LAST .. EINVAL
    assert pstm.RegionNotFound.code == -1002
    assert pstm.HeapFull.code == -1016
    assert pstm.Corrupt.code == -1009


def test_open_missing_and_create_twice(uri):
    with pytest.raises(pstm.RegionNotFound) as e:
        pstm.open(uri)
    assert e.value.code == -1002
    assert e.value.strerror == pstm.strerror(-1002)
    with pstm.create(uri, size=4 << 20):
        with pytest.raises(pstm.RegionExists):
            pstm.create(uri, size=4 << 20)
    pstm.create(uri, size=4 << 20, replace=True).close()


def test_create_bad_options(uri):
    with pytest.raises(pstm.InvalidArgument):
        pstm.create(uri, durability="sometimes")
    with pytest.raises(pstm.TooSmall):
        pstm.create(uri, size=4096)
    with pytest.raises(TypeError):
        pstm.create(uri, size="big")
    with pytest.raises(TypeError):
        pstm.open(42)
    with pytest.raises(pstm.InvalidArgument):  # relaxed needs a file
        pstm.create(uri, durability="relaxed")


def test_durable_file_region(tmp_path):
    path = str(tmp_path / "r.pstm")
    with pstm.create(path, size=8 << 20, durability="durable",
                     log_bytes=1 << 16) as r:
        r.atomic(lambda tx: tx.map("m").__setitem__(b"k", b"v"))
    with pstm.open(path) as r:
        assert r.info()["durability"] == 2
        assert r.atomic(lambda tx: tx.map("m")[b"k"]) == b"v"
    pstm.unlink(path)  # and its /dev/shm runtime, which tmp_path would orphan


def test_wrong_types(region):
    def each(body):
        with pytest.raises(TypeError):
            region.atomic(body)

    each(lambda tx: tx.load64("0"))
    each(lambda tx: tx.load64(1.5))
    each(lambda tx: tx.store64(tx.root(8), "1"))
    each(lambda tx: tx.write(tx.root(8), "text, not bytes"))
    each(lambda tx: tx.read(tx.root(8), None))
    each(lambda tx: tx.map(1.0))
    each(lambda tx: tx.map(None))
    each(lambda tx: tx.map("m").__setitem__("str key", b"v"))
    each(lambda tx: tx.map("m").__setitem__(b"k", 5))
    each(lambda tx: tx.queue("q").push(["list"]))
    with pytest.raises(TypeError):
        region.atomic(42)


def test_out_of_range_and_too_long(region):
    heap = region.info()

    def each(exc, body):
        with pytest.raises(exc):
            region.atomic(body)

    each(pstm.OutOfRange, lambda tx: tx.load64(0))
    each(pstm.OutOfRange, lambda tx: tx.load64(1 << 63))
    each(pstm.OutOfRange, lambda tx: tx.load64(1 << 70))
    each(pstm.OutOfRange, lambda tx: tx.load64(-1))
    each(pstm.OutOfRange, lambda tx: tx.store64(heap["size_bytes"], 1))
    each(pstm.OutOfRange, lambda tx: tx.read(tx.root(8), 1 << 40))
    each(pstm.OutOfRange, lambda tx: tx.write(heap["heap_off"]
                                              + heap["heap_bytes"] - 4,
                                              b"12345678"))
    each(pstm.InvalidArgument, lambda tx: tx.read(tx.root(8), -1))
    each(OverflowError, lambda tx: tx.store64(tx.root(8), -1))
    each(OverflowError, lambda tx: tx.store64(tx.root(8), 1 << 64))
    each(pstm.OutOfRange, lambda tx: tx.map(-1))
    # more than the heap can log in one transaction (a larger write than
    # the redo log takes an overflow extent: that commits)
    big = (heap["heap_bytes"] // 2) & ~7
    each(pstm.LogFull, lambda tx: tx.write(tx.alloc(big), b"x" * big))
    each(pstm.LogFull, lambda tx: tx.map("m").__setitem__(b"k", b"v" * big))
    off = region.atomic(lambda tx: tx.alloc(1 << 20))
    region.atomic(lambda tx: tx.write(off, b"y" * (1 << 20)))
    assert region.atomic(lambda tx: tx.read(off, 1 << 20)) == b"y" * (1 << 20)
    each(pstm.HeapFull, lambda tx: tx.alloc(1 << 40))
    # a root grows never
    region.atomic(lambda tx: tx.root())
    each(pstm.InvalidArgument, lambda tx: tx.root(pstm.ROOT_BYTES + 8))
    # a map where a queue is
    region.atomic(lambda tx: tx.queue(2))
    each(pstm.InvalidArgument, lambda tx: tx.map(2))
    # read-only transactions write nothing
    with pytest.raises(pstm.InvalidArgument):
        region.atomic(lambda tx: tx.store64(tx.root(8), 1), read_only=True)
    # still usable after all that
    region.atomic(lambda tx: tx.store64(tx.root(8), 3))
    assert region.atomic(lambda tx: tx.load64(tx.root(8))) == 3


def test_root_made_smaller_before_a_map(region):
    region.atomic(lambda tx: tx.root(16))
    with pytest.raises(pstm.InvalidArgument):
        region.atomic(lambda tx: tx.map(0))
    assert region.atomic(lambda tx: tx.root(8)) > 0


def test_closed_region(uri):
    r = pstm.create(uri, size=4 << 20)
    r.close()
    r.close()                                  # idempotent
    assert r.closed
    for call in (lambda: r.atomic(lambda tx: None), r.info, r.stats, r.sync):
        with pytest.raises(pstm.RegionClosed) as e:
            call()
        assert isinstance(e.value, pstm.InvalidArgument)
    with pytest.raises(pstm.RegionClosed):
        with r:
            pass


def test_close_inside_its_transaction(region):
    with pytest.raises(pstm.InTransaction):
        region.atomic(lambda tx: region.close())
    assert not region.closed


def test_transaction_object_after_its_end(region):
    kept = []

    def body(tx):
        kept.append((tx, tx.map("m"), tx.queue("q")))

    region.atomic(body)
    tx, m, q = kept[0]
    assert not tx.active
    for call in (lambda: tx.load64(tx.region.info()["heap_off"]),
                 lambda: m[b"k"], lambda: len(m), lambda: q.pop(),
                 lambda: tx.on_commit(print)):
        with pytest.raises(pstm.TransactionEnded) as e:
            call()
        assert isinstance(e.value, pstm.NotInTransaction)


def test_nested_atomic_of_another_region(region, uri):
    try:
        with pstm.create(uri + "-b", size=4 << 20) as other:
            with pytest.raises(pstm.InTransaction):
                region.atomic(lambda tx: other.atomic(lambda t2: None))
    finally:
        # closed first: an attached region cannot be removed
        pstm.unlink(uri + "-b")


def test_handle_used_in_a_forked_child(region):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            region.atomic(lambda tx: None)
        except pstm.InvalidArgument:
            code = 0
        except BaseException:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_create_option_ranges(uri):
    for kw in ({"size": -1}, {"max_procs": -1}, {"max_procs": 1 << 40},
               {"max_threads": 1 << 32}, {"log_bytes": -5},
               {"flush_ms": 1 << 33}, {"mode": -1}, {"mode": 0o4755},
               {"size": 1 << 64}):
        with pytest.raises(pstm.InvalidArgument):
            pstm.create(uri, **kw)
    with pytest.raises(TypeError):
        pstm.create(uri, mode="0600")
    with pytest.raises(TypeError):
        pstm.create(uri, max_procs=2.0)
    with pytest.raises(pstm.RegionNotFound):       # nothing was made
        pstm.open(uri)
    with pstm.create(uri, size=4 << 20, mode=0o640, max_procs=8) as r:
        assert r.info()["max_procs"] == 8
    assert os.stat("/dev/shm/" + uri[4:]).st_mode & 0o7777 == 0o640


def test_uri_with_a_nul_character(uri):
    short = pstm.create(uri, size=4 << 20)       # what C would see
    try:
        for call in (pstm.open, pstm.unlink,
                     lambda u: pstm.create(u, size=4 << 20, replace=True)):
            with pytest.raises(pstm.InvalidArgument, match="NUL"):
                call(uri + "\0tail")
    finally:
        short.close()
    with pstm.open(uri) as r:                    # untouched
        assert r.info()["size_bytes"] == 4 << 20


def test_read_only_transaction_says_why(region):
    region.atomic(lambda tx: tx.root())
    with pytest.raises(pstm.InvalidArgument, match="read-only"):
        region.atomic(lambda tx: tx.store64(tx.root(), 1), read_only=True)
    with pytest.raises(pstm.InvalidArgument, match="read-only"):
        region.atomic(lambda tx: tx.map("new"), read_only=True)
    assert region.atomic(lambda tx: tx.load64(tx.root()),
                         read_only=True) == 0


def test_transaction_used_in_a_child_forked_inside_it(region):
    """A child forked inside a body cannot use the parent's transaction
    (it would commit in the parent's slot) nor join it."""
    def body(tx):
        x = tx.root()
        tx.store64(x, 1)
        pid = os.fork()
        if pid == 0:
            code = 0
            for call in (lambda: tx.load64(x), lambda: tx.store64(x, 2),
                         lambda: region.atomic(lambda t2: None)):
                try:
                    call()
                    code |= 1
                except pstm.InvalidArgument:
                    pass
                except BaseException:
                    code |= 2
            if pstm.current() is not None:
                code |= 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        tx.store64(x, tx.load64(x) + 1)
        return status

    status = region.atomic(body)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        "child: exit %d" % os.WEXITSTATUS(status)
    assert region.atomic(lambda tx: tx.load64(tx.root())) == 2


def test_transaction_used_from_another_thread(region):
    kept, errors = [], []

    def body(tx):
        kept.append(tx)
        t = threading.Thread(target=lambda: errors.append(
            _raises(lambda: tx.load64(tx.root()))))
        t.start()
        t.join()

    region.atomic(body)
    assert errors == [pstm.InvalidArgument]


def _raises(call):
    try:
        call()
    except BaseException as e:  # noqa: B902
        return type(e)
    return None


def test_unpicklable_value_rolls_back(region):
    region.atomic(lambda tx: tx.pickle_map("p").__setitem__("k", 1))

    def body(tx):
        p = tx.pickle_map("p")
        p["k"] = 2
        p["bad"] = threading.Lock()            # cannot be pickled

    with pytest.raises(TypeError):
        region.atomic(body)
    assert region.atomic(lambda tx: dict(tx.pickle_map("p"))) == {"k": 1}


def test_every_public_name_has_a_docstring():
    import inspect
    from pstm import transaction
    missing = []

    def check(name, obj):
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)

    for n in pstm.__all__:
        obj = getattr(pstm, n)
        check(n, obj)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for klass in obj.__mro__:
            if klass.__module__ not in ("pstm", "pstm._core"):
                continue
            for m, v in vars(klass).items():
                if not m.startswith("_") and \
                        not inspect.ismemberdescriptor(v):  # __slots__
                    check("%s.%s" % (n, m), v)
    for n in transaction.__all__:
        check("transaction." + n, getattr(transaction, n))
    assert missing == []
