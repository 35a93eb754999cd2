/*
 * _core.c - the CPython extension under the pstm package: region handles,
 * one transaction attempt (pstm_tx_begin ... pstm_tx_commit / _end) and
 * the error classes.  The retry loop, maps, queues and pstm.transaction
 * are Python (pstm/__init__.py) on top of this.
 *
 * Never a longjmp through the interpreter: only the explicit, never
 * unwinding calls of pstm.h are used, and the unwinding ones (pstm_ds.h)
 * only through pstm_tx_call, whose callbacks below touch no Python
 * object and own no memory a longjmp could leak (their buffers belong to
 * the caller's frame, which frees them whatever pstm_tx_call returns).
 *
 * PSTM_ECONFLICT from any call raises pstm._core.Retry, a BaseException
 * (so `except Exception` in a body does not swallow it); the attempt is
 * rolled back already and the Python loop ends it and runs the body
 * again.
 *
 * The GIL.  A library call that may wait for another thread of this
 * process to finish its transaction (which needs the GIL to run its
 * Python body) must release it: pstm_tx_begin (back-off, waiting for an
 * escalated transaction), pstm_tx_commit and pstm_tx_end (a durable
 * commit's msync), pstm_tx_inevitable (waiting for the role), and every
 * call of an inevitable attempt (it waits for committers' locks).  The
 * calls of an ordinary attempt never wait for another transaction: a
 * locked word is retried for a bounded spin, then the attempt loses
 * (PSTM_ECONFLICT); the allocator, maps and queues are transactions' words
 * like any other.  So word, map and queue calls keep the GIL (releasing
 * and taking it again cost more than a load); walks of a whole map or
 * queue, long, release it.
 *
 * The running attempt of each thread is kept here too (tl_current, a
 * strong reference from begin to commit/end): pstm.current() and the
 * flattening of nested atomic() read it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <pstm.h>
#include <pstm_ds.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ errors */

static PyObject *Error, *Retry, *RegionClosed, *TransactionEnded;

/* This process's id, refreshed in a forked child (pthread_atfork):
 * handles and attempts of another process are refused without a
 * getpid() system call per access. */
static pid_t my_pid;

/* One Python class per PSTM_E* code: pstm.<name>, subclass of pstm.Error */
static const struct code_name {
	int code;
	const char *name;
	int value_error; /* also a ValueError (bad input) */
	const char *c_name;
} code_names[] = {
	{PSTM_EINVAL, "InvalidArgument", 1, "PSTM_EINVAL"},
	{PSTM_ENOENT, "RegionNotFound", 0, "PSTM_ENOENT"},
	{PSTM_EEXIST, "RegionExists", 0, "PSTM_EEXIST"},
	{PSTM_EACCES, "PermissionDenied", 0, "PSTM_EACCES"},
	{PSTM_EIO, "IOFailure", 0, "PSTM_EIO"},
	{PSTM_ENOMEM, "OutOfMemory", 0, "PSTM_ENOMEM"},
	{PSTM_EBADMAGIC, "BadMagic", 0, "PSTM_EBADMAGIC"},
	{PSTM_EVERSION, "UnsupportedVersion", 0, "PSTM_EVERSION"},
	{PSTM_ECORRUPT, "Corrupt", 0, "PSTM_ECORRUPT"},
	{PSTM_ETRUNC, "Truncated", 0, "PSTM_ETRUNC"},
	{PSTM_ETOOSMALL, "TooSmall", 1, "PSTM_ETOOSMALL"},
	{PSTM_EPROCFULL, "ProcessTableFull", 0, "PSTM_EPROCFULL"},
	{PSTM_ESLOTFULL, "SlotsFull", 0, "PSTM_ESLOTFULL"},
	{PSTM_ERANGE, "OutOfRange", 1, "PSTM_ERANGE"},
	{PSTM_ELOGFULL, "LogFull", 0, "PSTM_ELOGFULL"},
	{PSTM_EHEAPFULL, "HeapFull", 0, "PSTM_EHEAPFULL"},
	{PSTM_EINTX, "InTransaction", 0, "PSTM_EINTX"},
	{PSTM_EBUSY, "Busy", 0, "PSTM_EBUSY"},
	{PSTM_ECANCELED, "Canceled", 0, "PSTM_ECANCELED"},
	{PSTM_ENOTX, "NotInTransaction", 0, "PSTM_ENOTX"},
	{PSTM_ECLOCK, "ClockExhausted", 0, "PSTM_ECLOCK"},
	{PSTM_EEMPTY, "EmptyFile", 0, "PSTM_EEMPTY"},
	{PSTM_ERUNTIME, "RuntimeVanished", 0, "PSTM_ERUNTIME"},
	{PSTM_ECONFLICT, "Conflict", 0, "PSTM_ECONFLICT"},
	{PSTM_EUNREGISTERED, "Unregistered", 0, "PSTM_EUNREGISTERED"},
	{PSTM_ETYPESFULL, "TypesFull", 0, "PSTM_ETYPESFULL"},
	{PSTM_EREPLACED, "RegionReplaced", 0, "PSTM_EREPLACED"},
};
#define NCODES (sizeof code_names / sizeof code_names[0])
static PyObject *code_class[NCODES];

static PyObject *class_of(int code)
{
	for (size_t i = 0; i < NCODES; i++)
		if (code_names[i].code == code)
			return code_class[i];
	return Error;
}

/* Raise @cls (a pstm.Error class) for @code, @msg or the strerror text. */
static PyObject *raise_as(PyObject *cls, int code, const char *msg)
{
	const char *text = pstm_strerror(code);
	PyObject *exc;
	if (msg)
		exc = PyObject_CallFunction(cls, "s", msg);
	else
		exc = PyObject_CallFunction(cls, "s", text);
	if (!exc)
		return NULL;
	PyObject *c = PyLong_FromLong(code);
	PyObject *s = PyUnicode_FromString(text);
	if (c && s && PyObject_SetAttrString(exc, "code", c) == 0 &&
	    PyObject_SetAttrString(exc, "strerror", s) == 0)
		PyErr_SetObject(cls, exc);
	Py_XDECREF(c);
	Py_XDECREF(s);
	Py_DECREF(exc);
	return NULL;
}

static PyObject *raise_code(int code, const char *msg)
{
	return raise_as(class_of(code), code, msg);
}

/* ------------------------------------------------------------ region */

typedef struct {
	PyObject_HEAD
	pstm_region *r;
	pid_t pid;          /* the process that opened it */
	long active;        /* attempts of this handle not yet ended */
	uint64_t heap_off, heap_bytes;
	PyObject *uri;
} RegionObject;

static PyTypeObject RegionType, TxType;

/* NULL with the exception set unless @self is usable here */
static pstm_region *region_get(RegionObject *self)
{
	if (!self->r) {
		raise_as(RegionClosed, PSTM_EINVAL, "region is closed");
		return NULL;
	}
	if (self->pid != my_pid) {
		raise_as(class_of(PSTM_EINVAL), PSTM_EINVAL,
			 "region handle was opened by another process (fork): "
			 "open the region again in this one");
		return NULL;
	}
	return self->r;
}

static int region_fill(RegionObject *self, pstm_region *r, PyObject *uri)
{
	struct pstm_region_info info;
	memset(&info, 0, sizeof info);
	int rc = pstm_region_info(r, &info);
	if (rc) {
		pstm_close(r);
		raise_code(rc, NULL);
		return -1;
	}
	self->r = r;
	self->pid = my_pid;
	self->heap_off = info.heap_off;
	self->heap_bytes = info.heap_bytes;
	Py_INCREF(uri);
	self->uri = uri;
	return 0;
}

/* The Region object for @r just opened or created (@rc its result):
 * raises for rc, and closes r if the object cannot be made. */
static PyObject *region_new(int rc, pstm_region *r, PyObject *uri)
{
	if (rc)
		return raise_code(rc, NULL);
	RegionObject *self = PyObject_New(RegionObject, &RegionType);
	if (!self) {
		pstm_close(r);
		return NULL;
	}
	self->r = NULL;
	self->active = 0;
	self->uri = NULL;
	if (region_fill(self, r, uri)) {
		Py_DECREF(self);
		return NULL;
	}
	return (PyObject *)self;
}

/* @arg as a URI: a str, else TypeError (NULL). */
static const char *uri_arg(PyObject *arg)
{
	if (!PyUnicode_Check(arg)) {
		PyErr_Format(PyExc_TypeError, "uri must be str, not %.100s",
			     Py_TYPE(arg)->tp_name);
		return NULL;
	}
	Py_ssize_t n;
	const char *u = PyUnicode_AsUTF8AndSize(arg, &n);
	if (u && strlen(u) != (size_t)n) { /* C would see a shorter URI */
		raise_code(PSTM_EINVAL, "uri contains a NUL character");
		return NULL;
	}
	return u;
}

/* Option @name of create(): an int in 0 .. @max (None: 0), else
 * TypeError or InvalidArgument; 0 or -1 with the exception set. */
static int opt_uint(PyObject *o, const char *name, unsigned long long max,
		    unsigned long long *out)
{
	*out = 0;
	if (!o || o == Py_None)
		return 0;
	if (!PyLong_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", name,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	int overflow = 0;
	long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
	if (v == -1 && PyErr_Occurred())
		return -1;
	unsigned long long u = (unsigned long long)v;
	if (overflow > 0) { /* above LLONG_MAX: only size may be */
		u = PyLong_AsUnsignedLongLong(o);
		if (u == (unsigned long long)-1 && PyErr_Occurred()) {
			PyErr_Clear();
			overflow = -1;
		}
	}
	if (overflow < 0 || (!overflow && v < 0) || u > max) {
		char m[120];
		snprintf(m, sizeof m,
			 strcmp(name, "mode") ? "%s must be in 0 .. %llu"
					      : "%s must be in 0 .. 0o%llo",
			 name, max);
		raise_code(PSTM_EINVAL, m);
		return -1;
	}
	*out = u;
	return 0;
}

static PyObject *core_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"uri", "size", "durability", "mode", "replace",
				 "max_procs", "max_threads", "log_bytes",
				 "flush_ms", NULL};
	PyObject *uri, *size = NULL, *mode = NULL, *procs = NULL, *threads = NULL,
		 *log = NULL, *flush = NULL;
	int durability = 0, replace = 0;
	unsigned long long v[6];
	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OiOpOOOO", kwlist, &uri,
					 &size, &durability, &mode, &replace,
					 &procs, &threads, &log, &flush))
		return NULL;
	const char *u = uri_arg(uri);
	if (!u || opt_uint(size, "size", UINT64_MAX, &v[0]) ||
	    opt_uint(mode, "mode", 0777, &v[1]) ||
	    opt_uint(procs, "max_procs", UINT32_MAX, &v[2]) ||
	    opt_uint(threads, "max_threads", UINT32_MAX, &v[3]) ||
	    opt_uint(log, "log_bytes", UINT32_MAX, &v[4]) ||
	    opt_uint(flush, "flush_ms", UINT32_MAX, &v[5]))
		return NULL;
	struct pstm_create_opts o;
	memset(&o, 0, sizeof o);
	o.size_bytes = v[0];
	o.durability = durability;
	o.mode = (mode_t)v[1];
	o.replace = replace;
	o.max_procs = (uint32_t)v[2];
	o.max_threads = (uint32_t)v[3];
	o.log_bytes = (uint32_t)v[4];
	o.flush_ms = (uint32_t)v[5];
	pstm_region *r = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pstm_create(u, &o, &r);
	Py_END_ALLOW_THREADS
	return region_new(rc, r, uri);
}

static PyObject *core_open(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *u = uri_arg(arg);
	if (!u)
		return NULL;
	pstm_region *r = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pstm_open(u, &r);
	Py_END_ALLOW_THREADS
	return region_new(rc, r, arg);
}

static PyObject *core_unlink(PyObject *mod, PyObject *arg)
{
	(void)mod;
	const char *u = uri_arg(arg);
	if (!u)
		return NULL;
	int rc = pstm_unlink(u);
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

static PyObject *core_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	int code = (int)PyLong_AsLong(arg);
	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(pstm_strerror(code));
}

static PyObject *core_in_tx(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyBool_FromLong(pstm_in_tx());
}

static PyObject *region_close(RegionObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->r)
		Py_RETURN_NONE; /* closing twice is harmless */
	if (self->active)
		return raise_code(PSTM_EINTX,
				  "close: a transaction on this region is running");
	pstm_region *r = self->r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pstm_close(r);
	Py_END_ALLOW_THREADS
	if (rc == PSTM_EINTX) /* this thread is in another region's tx */
		return raise_code(rc, NULL);
	self->r = NULL;
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

static PyObject *region_sync(RegionObject *self, PyObject *unused)
{
	(void)unused;
	pstm_region *r = region_get(self);
	if (!r)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pstm_sync(r);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

static PyObject *region_info(RegionObject *self, PyObject *unused)
{
	(void)unused;
	pstm_region *r = region_get(self);
	if (!r)
		return NULL;
	struct pstm_region_info i;
	memset(&i, 0, sizeof i);
	int rc = pstm_region_info(r, &i);
	if (rc)
		return raise_code(rc, NULL);
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:i,s:I,s:i,s:I,s:I,s:I,s:I,s:I}", "size_bytes",
		(unsigned long long)i.size_bytes, "heap_off",
		(unsigned long long)i.heap_off, "heap_bytes",
		(unsigned long long)i.heap_bytes, "durability", i.durability,
		"flush_ms", i.flush_ms, "is_pmem", i.is_pmem, "max_procs",
		i.max_procs, "max_threads", i.max_threads, "log_bytes",
		i.log_bytes, "orecs_log2", i.orecs_log2, "format_version",
		i.format_version);
}

static PyObject *region_stats(RegionObject *self, PyObject *unused)
{
	(void)unused;
	pstm_region *r = region_get(self);
	if (!r)
		return NULL;
	struct pstm_stats s;
	memset(&s, 0, sizeof s);
	int rc = pstm_stats_get(r, &s);
	if (rc)
		return raise_code(rc, NULL);
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "commits",
			     (unsigned long long)s.commits, "commits_ro",
			     (unsigned long long)s.commits_ro, "aborts_read",
			     (unsigned long long)s.aborts_read, "aborts_lock",
			     (unsigned long long)s.aborts_lock, "aborts_validate",
			     (unsigned long long)s.aborts_validate, "aborts_user",
			     (unsigned long long)s.aborts_user, "escalations",
			     (unsigned long long)s.escalations, "recoveries",
			     (unsigned long long)s.recoveries);
}

/* ---------------------------------------------------------- attempts */

/*
 * One attempt of a transaction, the base of pstm.Transaction (whose
 * Python methods add maps, queues and hooks).  Fields the Python side
 * reads: region, attempt, active, conflicted, is_inevitable; the hook
 * lists _on_commit / _on_abort (None until the first hook) are the
 * Python side's, kept here so that one object per attempt is made.
 */
typedef struct {
	PyObject_HEAD
	pstm_tx *tx;          /* NULL once the attempt ended */
	RegionObject *handle; /* strong reference */
	PyObject *region;     /* the pstm.Region it runs on (strong) */
	PyObject *on_commit, *on_abort; /* lists or NULL (strong) */
	unsigned long thread; /* PyThread_get_thread_ident of its thread */
	pid_t pid;            /* the process that began it */
	long attempt;         /* 1 for the first run of the body, ... */
	int conflicted;       /* some call returned PSTM_ECONFLICT */
	int inevitable;       /* pstm_tx_inevitable succeeded */
	int read_only;
	int task;             /* a task's attempt (pstm_queue_run's, not ours
				 to commit or end) */
} TxObject;

/* The running attempt of this thread (a strong reference), or NULL. */
static _Thread_local TxObject *tl_current;

/* In a forked child: the attempt of the thread that forked belongs to
 * the parent (leaked here: no Python call is allowed in this handler). */
static void after_fork_child(void)
{
	my_pid = getpid();
	tl_current = NULL;
}

/* A new attempt, an instance of @cls (pstm.Transaction), begun with
 * pstm_tx_begin on this thread and made current; NULL with an exception. */
static TxObject *begin_attempt(RegionObject *self, PyTypeObject *cls,
			       PyObject *region, long attempt, int read_only)
{
	pstm_region *r = region_get(self);
	if (!r)
		return NULL;
	TxObject *t = (TxObject *)cls->tp_alloc(cls, 0);
	if (!t)
		return NULL;
	/* tp_alloc zeroed the rest */
	t->thread = PyThread_get_thread_ident();
	t->pid = my_pid;
	t->attempt = attempt;
	t->read_only = read_only;
	t->handle = (RegionObject *)Py_NewRef((PyObject *)self);
	t->region = Py_NewRef(region);
	pstm_tx *tx = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pstm_tx_begin(r, read_only ? PSTM_TX_READ_ONLY : 0, &tx);
	Py_END_ALLOW_THREADS
	if (rc) {
		Py_DECREF(t);
		raise_code(rc, NULL);
		return NULL;
	}
	t->tx = tx;
	self->active++;
	Py_XSETREF(tl_current, (TxObject *)Py_NewRef((PyObject *)t));
	return t;
}

/* _begin(cls, region, attempt, read_only) -> one attempt (tests and the
 * benchmark's breakdown; atomic() uses _atomic). */
static PyObject *region_begin(RegionObject *self, PyObject *const *args,
			      Py_ssize_t nargs)
{
	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError,
				"_begin(cls, region, attempt, read_only)");
		return NULL;
	}
	PyTypeObject *cls = (PyTypeObject *)args[0];
	if (!PyType_Check(args[0]) || !PyType_IsSubtype(cls, &TxType)) {
		PyErr_SetString(PyExc_TypeError, "_begin: cls must derive Attempt");
		return NULL;
	}
	long attempt = PyLong_AsLong(args[2]);
	if (attempt == -1 && PyErr_Occurred())
		return NULL;
	int read_only = PyObject_IsTrue(args[3]);
	if (read_only < 0)
		return NULL;
	return (PyObject *)begin_attempt(self, cls, args[1], attempt, read_only);
}

/* The attempt ended (committed or rolled back): no longer current. */
static void tx_ended(TxObject *t)
{
	t->tx = NULL;
	t->handle->active--;
	if (tl_current == t) {
		tl_current = NULL;
		Py_DECREF(t); /* the caller holds another reference */
	}
}

static int tx_traverse(TxObject *t, visitproc visit, void *arg)
{
	Py_VISIT(t->handle);
	Py_VISIT(t->region);
	Py_VISIT(t->on_commit);
	Py_VISIT(t->on_abort);
	return 0;
}

static int tx_clear(TxObject *t)
{
	Py_CLEAR(t->on_commit);
	Py_CLEAR(t->on_abort);
	Py_CLEAR(t->region);
	return 0; /* handle stays: a running attempt needs it */
}

static void tx_dealloc(TxObject *t)
{
	PyObject_GC_UnTrack(t);
	/* not reached while it runs: tl_current holds it until it ends (in
	 * a forked child the parent's attempt is leaked, never ended).
	 * Should one be dropped running, roll it back if it is ours to end */
	if (t->tx && t->thread == PyThread_get_thread_ident() &&
	    t->pid == my_pid) {
		pstm_tx_end(t->tx);
		t->tx = NULL;
		t->handle->active--;
	}
	tx_clear(t);
	Py_CLEAR(t->handle);
	Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *tx_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	(void)type;
	(void)args;
	(void)kw;
	PyErr_SetString(PyExc_TypeError,
			"transactions are made by Region.atomic(), not called");
	return NULL;
}

/* The attempt, or NULL with an exception: ended, other thread */
static pstm_tx *tx_get(TxObject *t)
{
	if (!t->tx) {
		raise_as(TransactionEnded, PSTM_ENOTX,
			 "the transaction has ended: this object is unusable "
			 "outside the body it was given to");
		return NULL;
	}
	if (t->thread != PyThread_get_thread_ident() || t->pid != my_pid) {
		raise_as(class_of(PSTM_EINVAL), PSTM_EINVAL,
			 t->pid != my_pid
				 ? "the transaction belongs to another process "
				   "(fork): its child cannot use it"
				 : "the transaction belongs to another thread");
		return NULL;
	}
	return t->tx;
}

static PyObject *tx_fail(TxObject *t, int rc)
{
	if (rc == PSTM_ECONFLICT) {
		t->conflicted = 1;
		PyErr_SetNone(Retry);
		return NULL;
	}
	if (rc == PSTM_EINVAL && t->read_only)
		return raise_code(rc, "invalid argument (a read-only transaction "
				      "cannot store, allocate, free, make the root "
				      "or become inevitable)");
	return raise_code(rc, NULL);
}

/* Library call @call (assigning rc) with the GIL released */
#define CALL(call)                                                          \
	do {                                                                \
		Py_BEGIN_ALLOW_THREADS                                      \
		call;                                                       \
		Py_END_ALLOW_THREADS                                        \
	} while (0)

/* A word access of attempt @t: the GIL kept unless it is inevitable (see
 * the top of the file) */
#define ACCESS(t, call)                                                     \
	do {                                                                \
		if ((t)->inevitable)                                        \
			CALL(call);                                         \
		else                                                        \
			call;                                               \
	} while (0)

static int parse_off(PyObject *o, uint64_t *out)
{
	if (!PyLong_Check(o)) {
		PyErr_Format(PyExc_TypeError, "offset must be int, not %.100s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		raise_code(PSTM_ERANGE, "offset out of range (0 .. 2**64-1)");
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_size(PyObject *o, size_t *out, const char *what)
{
	if (!PyLong_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	Py_ssize_t v = PyLong_AsSsize_t(o);
	if (v == -1 && PyErr_Occurred()) {
		PyErr_Clear();
		raise_code(PSTM_ERANGE, NULL);
		return -1;
	}
	if (v < 0) {
		char m[80];
		snprintf(m, sizeof m, "%s must not be negative", what);
		raise_code(PSTM_EINVAL, m);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

static int parse_u64(PyObject *o, uint64_t *out)
{
	if (!PyLong_Check(o)) {
		PyErr_Format(PyExc_TypeError, "value must be int, not %.100s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		PyErr_SetString(PyExc_OverflowError,
				"a word holds an int in 0 .. 2**64-1");
		return -1;
	}
	*out = v;
	return 0;
}

static PyObject *tx_load64(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	uint64_t off, v = 0;
	if (!tx || parse_off(arg, &off))
		return NULL;
	int rc;
	ACCESS(t, rc = pstm_tx_load64(tx, off, &v));
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromUnsignedLongLong(v);
}

static int two_args(const char *name, Py_ssize_t nargs)
{
	if (nargs == 2)
		return 0;
	PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (%zd given)",
		     name, nargs);
	return -1;
}

static PyObject *tx_store64(TxObject *t, PyObject *const *args,
			    Py_ssize_t nargs)
{
	pstm_tx *tx = tx_get(t);
	uint64_t off, v;
	if (!tx || two_args("store64", nargs) || parse_off(args[0], &off) ||
	    parse_u64(args[1], &v))
		return NULL;
	int rc;
	ACCESS(t, rc = pstm_tx_store64(tx, off, v));
	if (rc)
		return tx_fail(t, rc);
	Py_RETURN_NONE;
}

static PyObject *tx_read(TxObject *t, PyObject *const *args,
			 Py_ssize_t nargs)
{
	pstm_tx *tx = tx_get(t);
	uint64_t off;
	size_t n;
	if (!tx || two_args("read", nargs) || parse_off(args[0], &off) ||
	    parse_size(args[1], &n, "length"))
		return NULL;
	if (n > t->handle->heap_bytes) /* before allocating n bytes */
		return raise_code(PSTM_ERANGE, NULL);
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
	if (!b)
		return NULL;
	char *dst = PyBytes_AS_STRING(b);
	int rc;
	ACCESS(t, rc = pstm_tx_read(tx, off, dst, n));
	if (rc) {
		Py_DECREF(b);
		return tx_fail(t, rc);
	}
	return b;
}

static PyObject *tx_write(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	PyObject *o;
	Py_buffer buf;
	uint64_t off;
	if (!tx || !PyArg_ParseTuple(args, "Oy*", &o, &buf))
		return NULL;
	if (parse_off(o, &off)) {
		PyBuffer_Release(&buf);
		return NULL;
	}
	int rc;
	ACCESS(t, rc = pstm_tx_write(tx, off, buf.buf, (size_t)buf.len));
	PyBuffer_Release(&buf);
	if (rc)
		return tx_fail(t, rc);
	Py_RETURN_NONE;
}

static PyObject *tx_root(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	size_t n;
	if (!tx || parse_size(arg, &n, "size"))
		return NULL;
	pstm_off off = 0;
	int rc;
	CALL(rc = pstm_tx_root(tx, n, &off));
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromUnsignedLongLong(off);
}

static PyObject *tx_alloc(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	size_t n;
	if (!tx || parse_size(arg, &n, "size"))
		return NULL;
	if (n > t->handle->heap_bytes)
		return raise_code(PSTM_EHEAPFULL, NULL);
	pstm_off off = 0;
	int rc;
	CALL(rc = pstm_tx_alloc(tx, n, &off));
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromUnsignedLongLong(off);
}

static PyObject *tx_free(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	uint64_t off;
	if (!tx || parse_off(arg, &off))
		return NULL;
	int rc;
	CALL(rc = pstm_tx_free(tx, off));
	if (rc)
		return tx_fail(t, rc);
	Py_RETURN_NONE;
}

/* End the attempt: commit (@commit) or roll back. */
static PyObject *tx_finish(TxObject *t, int commit)
{
	pstm_tx *tx = tx_get(t);
	if (!tx)
		return NULL;
	if (t->task)
		return raise_code(PSTM_EINVAL, "a task's transaction is committed "
				  "by the queue when the task returns");
	int rc;
	if (commit)
		CALL(rc = pstm_tx_commit(tx));
	else
		CALL(rc = pstm_tx_end(tx));
	tx_ended(t);
	if (rc)
		return tx_fail(t, rc);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------ the retry loop */

/* Set once by the package (_setup): the class of attempts atomic() makes
 * and the Python function that runs a hook list, run_hooks(tx, which,
 * exc), which raises what a hook raised. */
static PyObject *tx_class, *hooks_runner;

static PyObject *core_setup(PyObject *mod, PyObject *args)
{
	(void)mod;
	PyObject *cls, *runner;
	if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &cls, &runner))
		return NULL;
	if (!PyType_IsSubtype((PyTypeObject *)cls, &TxType) ||
	    !PyCallable_Check(runner)) {
		PyErr_SetString(PyExc_TypeError, "_setup(Attempt subclass, callable)");
		return NULL;
	}
	Py_XSETREF(tx_class, Py_NewRef(cls));
	Py_XSETREF(hooks_runner, Py_NewRef(runner));
	Py_RETURN_NONE;
}

/* fn(tx, *fargs, **fkwds) */
static PyObject *call_body(PyObject *fn, PyObject *tx, PyObject *fargs,
			   PyObject *fkwds)
{
	PyObject *stack[9];
	Py_ssize_t n = PyTuple_GET_SIZE(fargs);
	if (n >= (Py_ssize_t)(sizeof stack / sizeof stack[0])) {
		PyObject *all = PyTuple_New(n + 1);
		if (!all)
			return NULL;
		PyTuple_SET_ITEM(all, 0, Py_NewRef(tx));
		for (Py_ssize_t i = 0; i < n; i++)
			PyTuple_SET_ITEM(all, i + 1,
					 Py_NewRef(PyTuple_GET_ITEM(fargs, i)));
		PyObject *res = PyObject_Call(fn, all, fkwds);
		Py_DECREF(all);
		return res;
	}
	stack[0] = tx;
	for (Py_ssize_t i = 0; i < n; i++)
		stack[i + 1] = PyTuple_GET_ITEM(fargs, i);
	return PyObject_VectorcallDict(fn, stack, (size_t)n + 1, fkwds);
}

/* Run @t's hook list @which through the package's runner; -1 with the
 * runner's exception set.  @exc: the exception the body raised (the
 * context of a hook's), or NULL. */
static int run_hooks(TxObject *t, const char *which, PyObject *exc)
{
	PyObject *r = PyObject_CallFunction(hooks_runner, "OsO", (PyObject *)t,
					    which, exc ? exc : Py_None);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

/*
 * _atomic(region, fn, args, kwds, read_only) - pstm.Region.atomic's loop:
 * begin, fn(tx, *args, **kwds), commit; after a lost conflict (the
 * attempt's `conflicted`, also when the body caught the retry exception
 * and raised another, or a retry exception from a body) end it, run its
 * abort hooks and go again; after any other exception end it, run the
 * abort hooks and propagate; after a commit run the commit hooks.
 * Inside an attempt of this thread: fn joins it (same region) or
 * InTransaction.
 */
static PyObject *region_atomic(RegionObject *self, PyObject *const *args,
			       Py_ssize_t nargs)
{
	if (nargs != 5 || !PyTuple_Check(args[2]) ||
	    (args[3] != Py_None && !PyDict_Check(args[3]))) {
		PyErr_SetString(PyExc_TypeError,
				"_atomic(region, fn, args, kwds, read_only)");
		return NULL;
	}
	PyObject *region = args[0], *fn = args[1], *fargs = args[2];
	PyObject *fkwds = args[3] == Py_None ? NULL : args[3];
	if (!tx_class) {
		PyErr_SetString(PyExc_RuntimeError, "pstm._core: _setup not called");
		return NULL;
	}
	if (!PyCallable_Check(fn)) {
		PyErr_Format(PyExc_TypeError, "atomic: fn must be callable, not %.100s",
			     Py_TYPE(fn)->tp_name);
		return NULL;
	}
	int read_only = PyObject_IsTrue(args[4]);
	if (read_only < 0)
		return NULL;
	if (tl_current) {
		if (tl_current->region != region)
			return raise_code(PSTM_EINTX,
					  "atomic: this thread runs a transaction "
					  "of another region");
		return call_body(fn, (PyObject *)tl_current, fargs, fkwds);
	}
	for (long attempt = 1;; attempt++) {
		TxObject *t = begin_attempt(self, (PyTypeObject *)tx_class,
					    region, attempt, read_only);
		if (!t)
			return NULL;
		PyObject *res = call_body(fn, (PyObject *)t, fargs, fkwds);
		if (res) {
			PyObject *ok = tx_finish(t, 1);
			if (ok) {
				Py_DECREF(ok);
				if (t->on_commit && run_hooks(t, "_on_commit", NULL))
					Py_CLEAR(res);
				Py_DECREF(t);
				return res;
			}
			Py_DECREF(res);
		}
		/* an exception is set: the body's or the commit's */
		if (t->tx) {
			int rc;
			CALL(rc = pstm_tx_end(t->tx));
			(void)rc; /* 0, or the attempt's own error: raised already */
			tx_ended(t);
		}
		if (!t->conflicted && !PyErr_ExceptionMatches(Retry)) {
			if (t->on_abort) {
				PyObject *type, *value, *tb;
				PyErr_Fetch(&type, &value, &tb);
				PyErr_NormalizeException(&type, &value, &tb);
				if (tb)
					PyException_SetTraceback(value, tb);
				if (run_hooks(t, "_on_abort", value)) {
					Py_XDECREF(type);
					Py_XDECREF(value);
					Py_XDECREF(tb);
				} else {
					PyErr_Restore(type, value, tb);
				}
			}
			Py_DECREF(t);
			return NULL;
		}
		PyErr_Clear(); /* lost a conflict: rolled back, run it again */
		if (t->on_abort && run_hooks(t, "_on_abort", NULL)) {
			Py_DECREF(t);
			return NULL;
		}
		Py_DECREF(t);
	}
}

/* pstm_tx_inevitable under pstm_tx_call's unwinding point: in a task's
 * attempt (a pstm_atomic one) pstm_tx_inevitable itself may unwind */
static int inevitable_cb(pstm_tx *tx, void *unused)
{
	(void)unused;
	return pstm_tx_inevitable(tx);
}

static PyObject *tx_inevitable(TxObject *t, PyObject *unused)
{
	(void)unused;
	pstm_tx *tx = tx_get(t);
	if (!tx)
		return NULL;
	int rc;
	CALL(rc = pstm_tx_call(tx, inevitable_cb, NULL));
	if (rc)
		return tx_fail(t, rc);
	t->inevitable = 1;
	Py_RETURN_NONE;
}

/*
 * set_name(name) - pstm_tx_name.  The library keeps the pointer until the
 * transaction ends (it copies the name when the attempt aborts or
 * publishes it), and a task's transaction ends after its Python object
 * may be gone: so each distinct name is kept, as bytes, for the life of
 * the process (tx_names; programs use a few fixed names).
 */
static PyObject *tx_names; /* str -> bytes */

static PyObject *tx_set_name(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	const char *name = NULL;
	if (!tx)
		return NULL;
	if (arg != Py_None) {
		if (!PyUnicode_Check(arg)) {
			PyErr_Format(PyExc_TypeError,
				     "set_name: a str or None, not %.100s",
				     Py_TYPE(arg)->tp_name);
			return NULL;
		}
		PyObject *b = PyDict_GetItemWithError(tx_names, arg);
		if (!b) {
			Py_ssize_t n;
			if (PyErr_Occurred())
				return NULL;
			const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
			if (!s)
				return NULL;
			if (n < 1 || n > 111 || strlen(s) != (size_t)n)
				return raise_code(PSTM_EINVAL,
						  "set_name: 1 to 111 bytes of UTF-8, "
						  "without NUL");
			b = PyBytes_FromStringAndSize(s, n);
			if (!b || PyDict_SetItem(tx_names, arg, b)) {
				Py_XDECREF(b);
				return NULL;
			}
			Py_DECREF(b); /* the dict keeps it */
		}
		name = PyBytes_AS_STRING(b);
	}
	int rc = pstm_tx_name(tx, name); /* never unwinds, never waits */
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

static PyObject *tx_commit(TxObject *t, PyObject *unused)
{
	(void)unused;
	return tx_finish(t, 1);
}

static PyObject *tx_end(TxObject *t, PyObject *unused)
{
	(void)unused;
	return tx_finish(t, 0);
}

/* ------------------------------------------ maps and queues (tx_call) */

/* Arguments of one data-structure call inside pstm_tx_call.  Everything
 * a callback allocates hangs off this struct, in the caller's frame,
 * which frees it whatever pstm_tx_call returns (also after unwinding). */
struct ds_call {
	pstm_off obj;
	const void *key, *val;
	size_t klen, vlen;
	char *buf;         /* out: value or item (caller's or malloc'd) */
	size_t cap, len;   /* buf's capacity; the full length found */
	size_t buckets;
	pstm_off made;     /* out: created object */
	/* walks: records (u32 klen, key, u32 vlen, value), malloc'd */
	char *walk;
	size_t walk_len, walk_cap;
	int keys_only;
	int nomem;
};

static int ds_type_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_ds_type(tx, c->obj);
}

static int map_create_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	c->made = pstm_map_create(tx, c->buckets);
	return 0;
}

static int queue_create_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	c->made = pstm_queue_create(tx);
	return 0;
}

static int map_get_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_map_get(tx, c->obj, c->key, c->klen, c->buf, c->cap, &c->len);
}

static int map_put_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_map_put(tx, c->obj, c->key, c->klen, c->val, c->vlen);
}

static int map_del_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_map_del(tx, c->obj, c->key, c->klen);
}

static int map_count_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	c->len = pstm_map_count(tx, c->obj);
	return 0;
}

static int walk_add(struct ds_call *c, const void *p, size_t n)
{
	uint32_t n32 = (uint32_t)n;
	size_t need = c->walk_len + 4 + n;
	if (need > c->walk_cap) {
		size_t cap = c->walk_cap ? c->walk_cap : 4096;
		while (cap < need)
			cap *= 2;
		char *w = realloc(c->walk, cap);
		if (!w) {
			c->nomem = 1;
			return 1;
		}
		c->walk = w;
		c->walk_cap = cap;
	}
	memcpy(c->walk + c->walk_len, &n32, 4);
	if (n)
		memcpy(c->walk + c->walk_len + 4, p, n);
	c->walk_len = need;
	return 0;
}

static int map_walk_entry(const void *key, size_t klen, const void *val,
			  size_t vlen, void *a)
{
	struct ds_call *c = a;
	if (walk_add(c, key, klen))
		return 1;
	return c->keys_only ? 0 : walk_add(c, val, vlen);
}

static int map_walk_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	c->walk_len = 0; /* a re-walk starts over */
	return pstm_map_iter(tx, c->obj, map_walk_entry, c);
}

static int queue_walk_item(const void *item, size_t len, void *a)
{
	return walk_add(a, item, len);
}

static int queue_walk_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	c->walk_len = 0;
	return pstm_queue_iter(tx, c->obj, queue_walk_item, c);
}

static int queue_push_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_queue_push(tx, c->obj, c->val, c->vlen);
}

static int queue_pop_cb(pstm_tx *tx, void *a)
{
	struct ds_call *c = a;
	return pstm_queue_pop(tx, c->obj, c->buf, c->cap, &c->len);
}

/* pstm_tx_call(@fn, @c) for attempt @t: the GIL kept as for a word
 * access (ACCESS; a map or queue call is a few words) */
static int ds_run(TxObject *t, pstm_tx *tx, pstm_fn fn, struct ds_call *c)
{
	int rc;
	ACCESS(t, rc = pstm_tx_call(tx, fn, c));
	return rc;
}

/* The same for a walk of a whole map or queue: the GIL released */
static int ds_walk(pstm_tx *tx, pstm_fn fn, struct ds_call *c)
{
	int rc;
	CALL(rc = pstm_tx_call(tx, fn, c));
	return rc;
}

static PyObject *tx_ds_type(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	if (!tx || parse_off(arg, &c.obj))
		return NULL;
	int rc = ds_run(t, tx, ds_type_cb, &c);
	if (rc < 0)
		return tx_fail(t, rc);
	return PyLong_FromLong(rc);
}

static PyObject *tx_map_create(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	Py_ssize_t buckets = 0;
	if (!tx || !PyArg_ParseTuple(args, "|n", &buckets))
		return NULL;
	c.buckets = buckets > 0 ? (size_t)buckets : 0;
	int rc = ds_run(t, tx, map_create_cb, &c);
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromUnsignedLongLong(c.made);
}

static PyObject *tx_queue_create(TxObject *t, PyObject *unused)
{
	(void)unused;
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	if (!tx)
		return NULL;
	int rc = ds_run(t, tx, queue_create_cb, &c);
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromUnsignedLongLong(c.made);
}

static int check_len(Py_ssize_t n, const char *what)
{
	if ((uint64_t)n > UINT32_MAX) {
		char m[80];
		snprintf(m, sizeof m, "%s longer than 2**32-1 bytes", what);
		raise_code(PSTM_EINVAL, m);
		return -1;
	}
	return 0;
}

/* map_get(map, key) -> bytes, or None if absent */
static PyObject *tx_map_get(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res = NULL;
	Py_buffer key;
	char small[512];
	if (!tx || !PyArg_ParseTuple(args, "Oy*", &o, &key))
		return NULL;
	if (parse_off(o, &c.obj) || check_len(key.len, "key"))
		goto out;
	c.key = key.buf;
	c.klen = (size_t)key.len;
	c.buf = small;
	c.cap = sizeof small;
	int rc = ds_run(t, tx, map_get_cb, &c);
	if (rc == PSTM_ENOENT) {
		Py_INCREF(Py_None);
		res = Py_None;
		goto out;
	}
	if (rc) {
		tx_fail(t, rc);
		goto out;
	}
	if (c.len <= sizeof small) {
		res = PyBytes_FromStringAndSize(small, (Py_ssize_t)c.len);
		goto out;
	}
	/* longer: read it again, in the same attempt, into its own object */
	res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)c.len);
	if (!res)
		goto out;
	c.buf = PyBytes_AS_STRING(res);
	c.cap = c.len;
	rc = ds_run(t, tx, map_get_cb, &c);
	if (rc || c.len != c.cap) { /* consistent snapshot: same length */
		Py_CLEAR(res);
		tx_fail(t, rc ? rc : PSTM_ECORRUPT);
	}
out:
	PyBuffer_Release(&key);
	return res;
}

static PyObject *tx_map_put(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res = NULL;
	Py_buffer key, val;
	if (!tx || !PyArg_ParseTuple(args, "Oy*y*", &o, &key, &val))
		return NULL;
	if (parse_off(o, &c.obj) || check_len(key.len, "key") ||
	    check_len(val.len, "value"))
		goto out;
	c.key = key.buf;
	c.klen = (size_t)key.len;
	c.val = val.buf;
	c.vlen = (size_t)val.len;
	int rc = ds_run(t, tx, map_put_cb, &c);
	if (rc)
		tx_fail(t, rc);
	else
		res = Py_NewRef(Py_None);
out:
	PyBuffer_Release(&key);
	PyBuffer_Release(&val);
	return res;
}

/* map_del(map, key) -> True if it was there */
static PyObject *tx_map_del(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res = NULL;
	Py_buffer key;
	if (!tx || !PyArg_ParseTuple(args, "Oy*", &o, &key))
		return NULL;
	if (parse_off(o, &c.obj) || check_len(key.len, "key"))
		goto out;
	c.key = key.buf;
	c.klen = (size_t)key.len;
	int rc = ds_run(t, tx, map_del_cb, &c);
	if (rc == 0 || rc == PSTM_ENOENT)
		res = PyBool_FromLong(rc == 0);
	else
		tx_fail(t, rc);
out:
	PyBuffer_Release(&key);
	return res;
}

static PyObject *tx_map_count(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	if (!tx || parse_off(arg, &c.obj))
		return NULL;
	int rc = ds_run(t, tx, map_count_cb, &c);
	if (rc)
		return tx_fail(t, rc);
	return PyLong_FromSize_t(c.len);
}

/* The records of a walk as a list: bytes (@per == 1) or 2-tuples. */
static PyObject *walk_list(const struct ds_call *c, int per)
{
	PyObject *list = PyList_New(0);
	size_t at = 0;
	while (list && at < c->walk_len) {
		PyObject *item[2] = {NULL, NULL};
		for (int i = 0; i < per; i++) {
			uint32_t n;
			memcpy(&n, c->walk + at, 4);
			item[i] = PyBytes_FromStringAndSize(c->walk + at + 4, n);
			at += 4 + n;
		}
		PyObject *e = per == 1 ? item[0]
				       : (item[0] && item[1]
						  ? PyTuple_Pack(2, item[0], item[1])
						  : NULL);
		if (per == 2) {
			Py_XDECREF(item[0]);
			Py_XDECREF(item[1]);
		}
		if (!e || PyList_Append(list, e)) {
			Py_XDECREF(e);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(e);
	}
	return list;
}

static PyObject *walk(TxObject *t, PyObject *args, pstm_fn fn, int keys_only,
		      int per)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res = NULL;
	if (!tx || !PyArg_ParseTuple(args, "O", &o) || parse_off(o, &c.obj))
		return NULL;
	c.keys_only = keys_only;
	int rc = ds_walk(tx, fn, &c);
	if (c.nomem)
		PyErr_NoMemory();
	else if (rc)
		tx_fail(t, rc);
	else
		res = walk_list(&c, per);
	free(c.walk);
	return res;
}

static PyObject *tx_map_keys(TxObject *t, PyObject *args)
{
	return walk(t, args, map_walk_cb, 1, 1);
}

static PyObject *tx_map_items(TxObject *t, PyObject *args)
{
	return walk(t, args, map_walk_cb, 0, 2);
}

static PyObject *tx_queue_items(TxObject *t, PyObject *args)
{
	return walk(t, args, queue_walk_cb, 1, 1);
}

static PyObject *tx_queue_push(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res = NULL;
	Py_buffer val;
	if (!tx || !PyArg_ParseTuple(args, "Oy*", &o, &val))
		return NULL;
	if (parse_off(o, &c.obj) || check_len(val.len, "item"))
		goto out;
	c.val = val.buf;
	c.vlen = (size_t)val.len;
	int rc = ds_run(t, tx, queue_push_cb, &c);
	if (rc)
		tx_fail(t, rc);
	else
		res = Py_NewRef(Py_None);
out:
	PyBuffer_Release(&val);
	return res;
}

/* queue_pop(q) -> bytes, or None if empty */
static PyObject *tx_queue_pop(TxObject *t, PyObject *args)
{
	pstm_tx *tx = tx_get(t);
	struct ds_call c = {0};
	PyObject *o, *res;
	char small[512];
	if (!tx || !PyArg_ParseTuple(args, "O", &o) || parse_off(o, &c.obj))
		return NULL;
	c.buf = small;
	c.cap = sizeof small;
	c.len = SIZE_MAX;
	int rc = ds_run(t, tx, queue_pop_cb, &c);
	if (rc == PSTM_ENOENT)
		Py_RETURN_NONE;
	if (rc == 0)
		return PyBytes_FromStringAndSize(small, (Py_ssize_t)c.len);
	if (rc != PSTM_EINVAL || c.len == SIZE_MAX || c.len <= sizeof small)
		return tx_fail(t, rc);
	/* longer than small: nothing was removed; pop into its own object */
	res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)c.len);
	if (!res)
		return NULL;
	c.buf = PyBytes_AS_STRING(res);
	c.cap = c.len;
	rc = ds_run(t, tx, queue_pop_cb, &c);
	if (rc || c.len != c.cap) {
		Py_DECREF(res);
		return tx_fail(t, rc ? rc : PSTM_ECORRUPT);
	}
	return res;
}

static PyObject *tx_get_active(TxObject *t, void *unused)
{
	(void)unused;
	return PyBool_FromLong(t->tx != NULL);
}

static PyObject *tx_get_conflicted(TxObject *t, void *unused)
{
	(void)unused;
	return PyBool_FromLong(t->conflicted);
}

static PyObject *tx_get_inevitable(TxObject *t, void *unused)
{
	(void)unused;
	return PyBool_FromLong(t->inevitable);
}

static PyObject *core_current(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return Py_NewRef(tl_current ? (PyObject *)tl_current : Py_None);
}

/* ---------------------------------------------------- the task queue */

/*
 * pstm.transaction.TransactionQueue over the region's task queue.  Every
 * Python task is one task of type PY_TASK_TYPE whose argument is the
 * pickle that transaction.py made ((module, qualname, args, kwds)).
 *
 * A task runs in the attempt of a pstm_queue_run worker thread, which
 * drives it with pstm_atomic: py_task takes the GIL, wraps the attempt
 * in a Transaction (`task` set) and calls the package's runner.  The
 * body's calls are the same explicit pstm_tx_* calls as in
 * Region.atomic: in a pstm_atomic attempt they stop the unwinding in
 * the call and return PSTM_ECONFLICT (or the error), so nothing ever
 * unwinds through the interpreter; the binding raises Retry, the
 * Python frames unwind normally, py_task returns, and the library
 * re-runs the task (or fails it) once py_task has returned.
 *
 * Each attempt registers one C commit hook and one C abort hook that
 * share a reference to its Transaction: exactly one of them runs (a
 * commit frees the abort hooks; a roll-back drops the commit hooks and
 * runs the abort ones), runs the Python hooks of the matching list and
 * drops the reference.  The commit hook also counts the task as
 * executed by this process.
 */
#define PY_TASK_TYPE "pstm.py"
#define PY_TASK_RAISED (-28793) /* a task raised a Python exception */

static PyObject *task_runner;      /* transaction._run_task(tx, data) */
static RegionObject *task_handle;  /* the handle of the active run */
static PyObject *task_region;      /* its pstm.Region */
static unsigned long long tasks_committed; /* under the GIL */

static void task_hook(TxObject *t, const char *which)
{
	PyGILState_STATE g = PyGILState_Ensure();
	int commit = strcmp(which, "_on_commit") == 0;
	PyObject *list = commit ? t->on_commit : t->on_abort;
	if (commit)
		tasks_committed++;
	if (list && run_hooks(t, which, NULL))
		PyErr_WriteUnraisable((PyObject *)t);
	Py_DECREF(t);
	PyGILState_Release(g);
}

static void task_commit_hook(void *arg)
{
	task_hook(arg, "_on_commit");
}

static void task_abort_hook(void *arg)
{
	task_hook(arg, "_on_abort");
}

/* Under pstm_tx_call: an abort hook first, so that once it is there
 * one of the two always runs */
struct hooks_call {
	TxObject *t;
	int abort_ok; /* the abort hook is registered */
};

static int task_hooks_cb(pstm_tx *tx, void *a)
{
	struct hooks_call *c = a;
	int rc = pstm_tx_on_abort(tx, task_abort_hook, c->t);
	if (rc)
		return rc;
	c->abort_ok = 1;
	return pstm_tx_on_commit(tx, task_commit_hook, c->t);
}

static int py_task(pstm_tx *tx, const void *arg, size_t len)
{
	PyGILState_STATE g = PyGILState_Ensure();
	int rc = PY_TASK_RAISED;
	TxObject *t = NULL;
	if (!task_runner || !task_handle || !tx_class) {
		PyErr_SetString(PyExc_RuntimeError,
				"pstm: a task ran outside TransactionQueue.run()");
		PyErr_WriteUnraisable(NULL);
		goto out;
	}
	t = (TxObject *)((PyTypeObject *)tx_class)->tp_alloc(
		(PyTypeObject *)tx_class, 0);
	if (!t) {
		PyErr_WriteUnraisable(NULL);
		goto out;
	}
	t->thread = PyThread_get_thread_ident();
	t->pid = my_pid;
	t->attempt = 1;
	t->task = 1;
	t->handle = (RegionObject *)Py_NewRef((PyObject *)task_handle);
	t->region = Py_NewRef(task_region);
	t->tx = tx;
	task_handle->active++;
	Py_XSETREF(tl_current, (TxObject *)Py_NewRef((PyObject *)t));
	Py_INCREF(t); /* the hooks' */
	struct hooks_call hc = {t, 0};
	int hrc = pstm_tx_call(tx, task_hooks_cb, &hc);
	if (hrc) {
		if (!hc.abort_ok)
			Py_DECREF(t); /* no hook holds it */
		rc = hrc;
		goto ended;
	}
	PyObject *data = PyBytes_FromStringAndSize(arg, (Py_ssize_t)len);
	PyObject *res = data ? PyObject_CallFunctionObjArgs(task_runner, (PyObject *)t,
							  data, NULL)
			     : NULL;
	Py_XDECREF(data);
	if (res) {
		Py_DECREF(res);
		/* a body that swallowed the retry exception: re-run it */
		rc = t->conflicted ? PSTM_ECONFLICT : 0;
	} else if (t->conflicted || PyErr_ExceptionMatches(Retry)) {
		PyErr_Clear();
		rc = PSTM_ECONFLICT;
	} else {
		/* the runner recorded it (transaction.py); the task fails */
		PyErr_Clear();
		rc = PY_TASK_RAISED;
	}
ended:
	t->tx = NULL;
	task_handle->active--;
	if (tl_current == t)
		Py_CLEAR(tl_current);
out:
	Py_XDECREF(t);
	PyGILState_Release(g);
	return rc;
}

static PyObject *core_setup_tasks(PyObject *mod, PyObject *runner)
{
	(void)mod;
	if (!PyCallable_Check(runner)) {
		PyErr_SetString(PyExc_TypeError, "_setup_tasks(callable)");
		return NULL;
	}
	Py_XSETREF(task_runner, Py_NewRef(runner));
	Py_RETURN_NONE;
}

/* _tasks_committed() -> tasks this process's runs committed so far */
static PyObject *core_tasks_committed(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyLong_FromUnsignedLongLong(tasks_committed);
}

/* _register() - the Python task type in this region (outside a tx) */
static PyObject *region_register(RegionObject *self, PyObject *unused)
{
	(void)unused;
	pstm_region *r = region_get(self);
	if (!r)
		return NULL;
	int rc;
	CALL(rc = pstm_register(r, PY_TASK_TYPE, py_task));
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

/* _enqueue(data) - a Python task, in its own transaction */
static PyObject *region_enqueue(RegionObject *self, PyObject *arg)
{
	pstm_region *r = region_get(self);
	Py_buffer b;
	if (!r || PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE))
		return NULL;
	int rc;
	CALL(rc = pstm_enqueue(r, PY_TASK_TYPE, b.buf, (size_t)b.len));
	PyBuffer_Release(&b);
	if (rc == PSTM_EINTX)
		return raise_code(rc, "this thread runs a transaction of another "
				      "region");
	if (rc)
		return raise_code(rc, NULL);
	Py_RETURN_NONE;
}

/* _queue_run(region, nthreads) -> pstm_queue_run's code (an int: a
 * task's error is no PSTM_E* code of its own) */
static PyObject *region_queue_run(RegionObject *self, PyObject *args)
{
	PyObject *region;
	int n;
	pstm_region *r = region_get(self);
	if (!r || !PyArg_ParseTuple(args, "Oi", &region, &n))
		return NULL;
	if (task_handle)
		return raise_code(PSTM_EBUSY, "a TransactionQueue run is active "
				  "in this process");
	task_handle = (RegionObject *)Py_NewRef((PyObject *)self);
	task_region = Py_NewRef(region);
	int rc;
	CALL(rc = pstm_queue_run(r, n));
	Py_CLEAR(task_handle);
	Py_CLEAR(task_region);
	return PyLong_FromLong(rc);
}

/* _failed() -> [(id, type, error, data)], the failed list newest first
 * (pstm_queue_failed, then each one's argument; a task retried or
 * dropped meanwhile is left out) */
static PyObject *region_failed(RegionObject *self, PyObject *unused)
{
	(void)unused;
	pstm_region *r = region_get(self);
	struct pstm_failed_task *v = NULL;
	size_t n = 0, cap = 0;
	PyObject *list = NULL;
	int rc;
	if (!r)
		return NULL;
	for (;;) {
		CALL(rc = pstm_queue_failed(r, v, cap, &n));
		if (rc) {
			raise_code(rc, NULL);
			goto out;
		}
		if (n <= cap)
			break;
		cap = n + 16; /* more failed meanwhile: ask again */
		PyMem_Free(v);
		v = PyMem_Malloc(cap * sizeof(*v));
		if (!v) {
			PyErr_NoMemory();
			goto out;
		}
	}
	list = PyList_New(0);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)v[i].arg_len);
		size_t len = 0;
		if (!data) {
			Py_CLEAR(list);
			break;
		}
		CALL(rc = pstm_queue_failed_arg(r, v[i].id, PyBytes_AS_STRING(data),
						(size_t)v[i].arg_len, &len));
		if (rc == PSTM_ENOENT || (!rc && len != v[i].arg_len)) {
			Py_DECREF(data); /* retried or dropped since */
			continue;
		}
		PyObject *item = rc ? NULL : Py_BuildValue("(KsiN)",
				(unsigned long long)v[i].id, v[i].type, v[i].err, data);
		if (rc) {
			Py_DECREF(data);
			raise_code(rc, NULL);
		}
		if (!item || PyList_Append(list, item)) {
			Py_XDECREF(item);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(item);
	}
out:
	PyMem_Free(v);
	return list;
}

/* _retry_failed() / _drop_failed() -> how many were moved */
static PyObject *move_failed(RegionObject *self, int retry)
{
	pstm_region *r = region_get(self);
	uint64_t n = 0;
	int rc;
	if (!r)
		return NULL;
	CALL(rc = retry ? pstm_queue_retry_failed(r, &n) : pstm_queue_drop_failed(r, &n));
	if (rc == PSTM_EINTX)
		return raise_code(rc, "this thread runs a transaction");
	if (rc)
		return raise_code(rc, NULL);
	return PyLong_FromUnsignedLongLong(n);
}

static PyObject *region_retry_failed(RegionObject *self, PyObject *unused)
{
	(void)unused;
	return move_failed(self, 1);
}

static PyObject *region_drop_failed(RegionObject *self, PyObject *unused)
{
	(void)unused;
	return move_failed(self, 0);
}

struct enqueue_call {
	const void *buf;
	size_t len;
};

static int enqueue_cb(pstm_tx *tx, void *a)
{
	struct enqueue_call *c = a;
	return pstm_tx_enqueue(tx, PY_TASK_TYPE, c->buf, c->len);
}

/* Attempt._enqueue(data) - a Python task, as part of this attempt */
static PyObject *tx_enqueue(TxObject *t, PyObject *arg)
{
	pstm_tx *tx = tx_get(t);
	Py_buffer b;
	if (!tx || PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE))
		return NULL;
	struct enqueue_call c = {b.buf, (size_t)b.len};
	int rc;
	ACCESS(t, rc = pstm_tx_call(tx, enqueue_cb, &c));
	PyBuffer_Release(&b);
	if (rc)
		return tx_fail(t, rc);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------ types */

static void region_dealloc(RegionObject *self)
{
	if (self->r && !self->active)
		pstm_close(self->r); /* a forked child's: only unmaps */
	Py_XDECREF(self->uri);
	PyObject_Free(self);
}

static PyObject *region_get_closed(RegionObject *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(self->r == NULL);
}

static PyObject *region_get_uri(RegionObject *self, void *unused)
{
	(void)unused;
	return Py_NewRef(self->uri ? self->uri : Py_None);
}

static PyMethodDef region_methods[] = {
	{"close", (PyCFunction)region_close, METH_NOARGS,
	 "close() - detach and unmap (idempotent; InTransaction while one of "
	 "its transactions runs)."},
	{"sync", (PyCFunction)region_sync, METH_NOARGS,
	 "sync() - make every committed transaction durable (relaxed regions)."},
	{"info", (PyCFunction)region_info, METH_NOARGS,
	 "info() -> dict of pstm_region_info."},
	{"stats", (PyCFunction)region_stats, METH_NOARGS,
	 "stats() -> dict of pstm_stats (this process)."},
	{"_atomic", (PyCFunction)(void (*)(void))region_atomic, METH_FASTCALL,
	 "_atomic(region, fn, args, kwds, read_only) -> fn's result "
	 "(internal: pstm.Region.atomic's loop)."},
	{"_register", (PyCFunction)region_register, METH_NOARGS,
	 "_register() (internal: TransactionQueue's task type)."},
	{"_enqueue", (PyCFunction)region_enqueue, METH_O,
	 "_enqueue(data) (internal: TransactionQueue.add)."},
	{"_queue_run", (PyCFunction)region_queue_run, METH_VARARGS,
	 "_queue_run(region, nthreads) -> int (internal: a worker's run)."},
	{"_failed", (PyCFunction)region_failed, METH_NOARGS,
	 "_failed() -> [(id, type, error, data)] (internal: "
	 "TransactionQueue.failed)."},
	{"_retry_failed", (PyCFunction)region_retry_failed, METH_NOARGS,
	 "_retry_failed() -> int (internal: TransactionQueue.retry_failed)."},
	{"_drop_failed", (PyCFunction)region_drop_failed, METH_NOARGS,
	 "_drop_failed() -> int (internal: TransactionQueue.drop_failed)."},
	{"_begin", (PyCFunction)(void (*)(void))region_begin, METH_FASTCALL,
	 "_begin(cls, region, attempt, read_only) -> one attempt, an instance "
	 "of cls (internal: use pstm.Region.atomic())."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef region_getset[] = {
	{"closed", (getter)region_get_closed, NULL, "whether close() ran", NULL},
	{"uri", (getter)region_get_uri, NULL, "the URI it was opened with", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RegionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pstm._core.Region",
	.tp_basicsize = sizeof(RegionObject),
	.tp_dealloc = (destructor)region_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "An open region (internal base of pstm.Region).",
	.tp_methods = region_methods,
	.tp_getset = region_getset,
};

#define FAST(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL
static PyMethodDef tx_methods[] = {
	{"load64", (PyCFunction)tx_load64, METH_O,
	 "load64(off) -> int: the 8-byte word at offset off (unsigned; any "
	 "alignment, aligned words are the fast path)."},
	{"store64", FAST(tx_store64),
	 "store64(off, value): set the word at off to value (0 .. 2**64-1), "
	 "visible to others once the transaction commits."},
	{"read", FAST(tx_read),
	 "read(off, n) -> bytes: the n bytes at off."},
	{"write", (PyCFunction)tx_write, METH_VARARGS,
	 "write(off, data): write a bytes-like object at off."},
	{"alloc", (PyCFunction)tx_alloc, METH_O,
	 "alloc(n) -> int: the offset of n new bytes (16-byte aligned), "
	 "returned to the heap if the transaction rolls back (HeapFull when "
	 "there is no room)."},
	{"free", (PyCFunction)tx_free, METH_O,
	 "free(off): free a block from alloc(); reusable once this "
	 "transaction commits."},
	{"inevitable", (PyCFunction)tx_inevitable, METH_NOARGS,
	 "inevitable(): make this transaction the region's one inevitable "
	 "transaction (all processes; another one waits): from then on it "
	 "will not roll back on a conflict or run again, so it may do I/O.  "
	 "It may first run the body again from the start, once, if what it "
	 "read so far changed: call it before the I/O.  An exception in the "
	 "body still rolls it back (the region is unchanged; the I/O is "
	 "done).  InvalidArgument in a read-only transaction."},
	{"set_name", (PyCFunction)tx_set_name, METH_O,
	 "set_name(name): name this transaction (a str of 1 to 111 bytes of "
	 "UTF-8; None removes the name) for conflict reports (`pstm "
	 "conflicts URI`: \"transfer lost 32 ms against audit\").  Call it "
	 "first in the body (a body that runs again calls it again).  "
	 "Without one, transactions of Python show as unnamed.  Each "
	 "distinct name is kept for the life of the process: use a few "
	 "fixed names.  Only regions of format 2 keep conflict reports; on "
	 "others it does nothing."},
	{"_root", (PyCFunction)tx_root, METH_O, NULL},
	{"_commit", (PyCFunction)tx_commit, METH_NOARGS, NULL},
	{"_end", (PyCFunction)tx_end, METH_NOARGS, NULL},
	{"_ds_type", (PyCFunction)tx_ds_type, METH_O, NULL},
	{"_map_create", (PyCFunction)tx_map_create, METH_VARARGS, NULL},
	{"_map_get", (PyCFunction)tx_map_get, METH_VARARGS, NULL},
	{"_map_put", (PyCFunction)tx_map_put, METH_VARARGS, NULL},
	{"_map_del", (PyCFunction)tx_map_del, METH_VARARGS, NULL},
	{"_map_count", (PyCFunction)tx_map_count, METH_O, NULL},
	{"_map_keys", (PyCFunction)tx_map_keys, METH_VARARGS, NULL},
	{"_map_items", (PyCFunction)tx_map_items, METH_VARARGS, NULL},
	{"_queue_create", (PyCFunction)tx_queue_create, METH_NOARGS, NULL},
	{"_queue_push", (PyCFunction)tx_queue_push, METH_VARARGS, NULL},
	{"_queue_pop", (PyCFunction)tx_queue_pop, METH_VARARGS, NULL},
	{"_queue_items", (PyCFunction)tx_queue_items, METH_VARARGS, NULL},
	{"_enqueue", (PyCFunction)tx_enqueue, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};
#undef FAST

static PyMemberDef tx_members[] = {
	{"region", T_OBJECT, offsetof(TxObject, region), READONLY,
	 "the pstm.Region this transaction runs on"},
	{"attempt", T_LONG, offsetof(TxObject, attempt), READONLY,
	 "1 for the first run of the body, 2 after one conflict, ..."},
	{"_on_commit", T_OBJECT, offsetof(TxObject, on_commit), 0, NULL},
	{"_on_abort", T_OBJECT, offsetof(TxObject, on_abort), 0, NULL},
	{NULL, 0, 0, 0, NULL},
};

static PyGetSetDef tx_getset[] = {
	{"active", (getter)tx_get_active, NULL,
	 "True until the attempt commits or is rolled back", NULL},
	{"conflicted", (getter)tx_get_conflicted, NULL,
	 "some call lost a conflict (the attempt is rolled back)", NULL},
	{"is_inevitable", (getter)tx_get_inevitable, NULL,
	 "inevitable() succeeded in this attempt", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TxType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pstm._core.Attempt",
	.tp_basicsize = sizeof(TxObject),
	.tp_dealloc = (destructor)tx_dealloc,
	.tp_traverse = (traverseproc)tx_traverse,
	.tp_clear = (inquiry)tx_clear,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "One attempt of a transaction (the base of pstm.Transaction).",
	.tp_methods = tx_methods,
	.tp_members = tx_members,
	.tp_getset = tx_getset,
	.tp_new = tx_new,
};

static PyMethodDef core_methods[] = {
	{"create", (PyCFunction)(void (*)(void))core_create,
	 METH_VARARGS | METH_KEYWORDS, NULL},
	{"open", (PyCFunction)core_open, METH_O, NULL},
	{"unlink", (PyCFunction)core_unlink, METH_O, NULL},
	{"strerror", (PyCFunction)core_strerror, METH_O, NULL},
	{"in_tx", (PyCFunction)core_in_tx, METH_NOARGS, NULL},
	{"_setup", (PyCFunction)core_setup, METH_VARARGS,
	 "_setup(Transaction, run_hooks) (internal: the package calls it)."},
	{"_setup_tasks", (PyCFunction)core_setup_tasks, METH_O,
	 "_setup_tasks(runner) (internal: pstm.transaction calls it)."},
	{"_tasks_committed", (PyCFunction)core_tasks_committed, METH_NOARGS,
	 "_tasks_committed() -> tasks committed by this process's runs."},
	{"current", (PyCFunction)core_current, METH_NOARGS,
	 "current() -> the running attempt of this thread, or None."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
	PyModuleDef_HEAD_INIT, "pstm._core", "pstm internals (use pstm).", -1,
	core_methods, NULL, NULL, NULL, NULL,
};

static int add_class(PyObject *m, const char *name, PyObject *cls)
{
	Py_INCREF(cls);
	if (PyModule_AddObject(m, name, cls)) {
		Py_DECREF(cls);
		return -1;
	}
	return 0;
}

PyMODINIT_FUNC PyInit__core(void);
PyMODINIT_FUNC PyInit__core(void)
{
	my_pid = getpid();
	if (pthread_atfork(NULL, NULL, after_fork_child))
		return PyErr_NoMemory();
	PyObject *m = PyModule_Create(&core_module);
	if (!m)
		return NULL;
	if (PyType_Ready(&RegionType) || PyType_Ready(&TxType))
		goto fail;
	tx_names = PyDict_New();
	if (!tx_names)
		goto fail;
	Error = PyErr_NewExceptionWithDoc(
		"pstm.Error", "A pstm error: .code (PSTM_E*), .strerror.",
		PyExc_Exception, NULL);
	Retry = PyErr_NewExceptionWithDoc(
		"pstm._core.Retry",
		"Internal: the attempt lost a conflict; atomic() runs it again.",
		PyExc_BaseException, NULL);
	if (!Error || !Retry || add_class(m, "Error", Error) ||
	    add_class(m, "Retry", Retry))
		goto fail;
	for (size_t i = 0; i < NCODES; i++) {
		char full[64];
		snprintf(full, sizeof full, "pstm.%s", code_names[i].name);
		PyObject *bases = code_names[i].value_error
					  ? PyTuple_Pack(2, Error, PyExc_ValueError)
					  : PyTuple_Pack(1, Error);
		if (!bases)
			goto fail;
		char doc[200];
		snprintf(doc, sizeof doc,
			 "%s (%d): %s.  Raised for that code; .code and "
			 ".strerror on instances.",
			 code_names[i].c_name, code_names[i].code,
			 pstm_strerror(code_names[i].code));
		code_class[i] = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
		Py_DECREF(bases);
		if (!code_class[i])
			goto fail;
		PyObject *c = PyLong_FromLong(code_names[i].code);
		if (!c || PyObject_SetAttrString(code_class[i], "code", c)) {
			Py_XDECREF(c);
			goto fail;
		}
		Py_DECREF(c);
		if (add_class(m, code_names[i].name, code_class[i]))
			goto fail;
	}
	RegionClosed = PyErr_NewExceptionWithDoc(
		"pstm.RegionClosed", "The region handle was closed.",
		class_of(PSTM_EINVAL), NULL);
	TransactionEnded = PyErr_NewExceptionWithDoc(
		"pstm.TransactionEnded",
		"A transaction object used after its transaction ended.",
		class_of(PSTM_ENOTX), NULL); /* NotInTransaction */
	if (!RegionClosed || !TransactionEnded ||
	    add_class(m, "RegionClosed", RegionClosed) ||
	    add_class(m, "TransactionEnded", TransactionEnded) ||
	    add_class(m, "Region", (PyObject *)&RegionType) ||
	    add_class(m, "Attempt", (PyObject *)&TxType))
		goto fail;
	if (PyModule_AddStringConstant(m, "version", pstm_version()) ||
	    PyModule_AddIntConstant(m, "VOLATILE", PSTM_VOLATILE) ||
	    PyModule_AddIntConstant(m, "DURABLE", PSTM_DURABLE) ||
	    PyModule_AddIntConstant(m, "RELAXED", PSTM_RELAXED) ||
	    PyModule_AddIntConstant(m, "DS_MAP", PSTM_DS_MAP) ||
	    PyModule_AddIntConstant(m, "DS_QUEUE", PSTM_DS_QUEUE) ||
	    PyModule_AddIntConstant(m, "TASK_RAISED", PY_TASK_RAISED) ||
	    PyModule_AddIntConstant(m, "TASK_ARG_MAX", PSTM_TASK_ARG_MAX) ||
	    PyModule_AddStringConstant(m, "TASK_TYPE", PY_TASK_TYPE))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
