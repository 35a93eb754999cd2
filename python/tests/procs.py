"""Child processes for the tests: fork a function, start a group at once,
collect results, never leave a child behind."""
import os
import select
import signal
import time
import traceback


class Gate:
    """Children block in wait() until the parent calls open(): a group
    that starts at the same moment (a pipe's write end, closed by open)."""

    def __init__(self):
        self._r, self._w = os.pipe()

    def wait(self):
        os.close(self._w)
        os.read(self._r, 1)             # b"" once the parent closed it
        os.close(self._r)

    def open(self):
        if self._w >= 0:
            os.close(self._w)
            os.close(self._r)
            self._w = self._r = -1


def fork(fn, gate=None):
    """Run fn() in a child; returns (pid, read end of its result pipe).
    The child waits at gate (if any), writes fn's result (bytes) and
    exits 0, or prints the traceback and exits 1."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            if gate is not None:
                gate.wait()
            os.write(wfd, fn() or b"")
            code = 0
        except BaseException:  # noqa: B902  (the child reports everything)
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(wfd)
    return pid, rfd


def kill_all(children):
    for pid, _ in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid, rfd in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        try:
            os.close(rfd)
        except OSError:
            pass


def join(children, timeout=60.0):
    """Every child's result, in order; each must exit 0 within timeout
    seconds of this call (else all are killed and the test fails)."""
    deadline = time.monotonic() + timeout
    out = []
    try:
        for i, (pid, rfd) in enumerate(children):
            data = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("child %d (pid %d) still running "
                                         "after %.0f s" % (i, pid, timeout))
                ready, _, _ = select.select([rfd], [], [], left)
                if ready:
                    chunk = os.read(rfd, 65536)
                    if not chunk:
                        break
                    data += chunk
            _, status = os.waitpid(pid, 0)
            os.close(rfd)
            children[i] = (pid, -1)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
                "child %d (pid %d) failed: status %#x" % (i, pid, status)
            out.append(data)
    except BaseException:
        kill_all([(p, r) for p, r in children if r >= 0])
        raise
    return out
