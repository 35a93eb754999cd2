/*
 * test_wire.c - pstmd's message protocol (lib/wire.c): every message
 * type built and parsed back; each thing the parser refuses, refused
 * with its own code; records and descriptors over a real seqpacket
 * socketpair, including one too long and too many descriptors (closed,
 * not leaked); and the fuzz target's corpus (tests/fuzz/wire_corpus/)
 * replayed through the fuzz target itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "wire.h"

#include "fuzz/fuzz_wire.c"

static void test_round_trip(void **s)
{
	(void)s;
	struct wire_buf w;
	struct wire_msg m;
	uint8_t id[24] = {1, 2, 3}, st[64] = {9};
	wire_begin(&w, WIRE_REGISTER, 42);
	wire_str(&w, WT_PATH, "shm:x");
	wire_bytes(&w, WT_FILE_ID, id, sizeof(id));
	wire_u32(&w, WT_PROC_IDX, 7);
	wire_u64(&w, WT_PROC_STATE, 0x123456789abcull);
	int n = wire_end(&w);
	assert_true(n > WIRE_HDR_BYTES);
	assert_int_equal(wire_parse(w.b, (size_t)n, 1, &m), 0);
	assert_int_equal(m.type, WIRE_REGISTER);
	assert_int_equal(m.id, 42);
	assert_string_equal(m.s[WT_PATH], "shm:x");
	assert_memory_equal(m.b[WT_FILE_ID], id, sizeof(id));
	assert_int_equal(m.u[WT_PROC_IDX], 7);
	assert_int_equal(m.u[WT_PROC_STATE], 0x123456789abcull);
	assert_true(wire_is_request(m.type));
	/* the same without its descriptor */
	assert_int_equal(wire_parse(w.b, (size_t)n, 0, &m), WIRE_EFDS);

	wire_begin(&w, WIRE_PROC, 1);
	wire_u32(&w, WT_ENTRY, 3);
	wire_u64(&w, WT_PID, 99);
	wire_u32(&w, WT_STATE, 0);
	wire_u32(&w, WT_SLOTS, 1);
	wire_bytes(&w, WT_STATS, st, sizeof(st));
	wire_u32(&w, WT_WATCHED, 1);
	n = wire_end(&w);
	assert_int_equal(wire_parse(w.b, (size_t)n, 0, &m), 0);
	assert_false(wire_is_request(m.type));
	assert_int_equal(m.u[WT_PID], 99);

	/* what does not fit is refused whole */
	static char big[WIRE_MAX_STR + 10];
	memset(big, 'a', sizeof(big) - 1);
	wire_begin(&w, WIRE_OPEN, 1);
	wire_str(&w, WT_NAME, big);
	assert_int_equal(wire_end(&w), -1);
	wire_begin(&w, WIRE_PING, 1);
	for (int i = 0; i < WIRE_MAX_FIELDS + 1; i++)
		wire_u32(&w, WT_WRITE, 1);
	assert_int_equal(wire_end(&w), -1);
}

/* A PING record, then @patch applied, parsed: the code. */
static int ping_with(void (*patch)(struct wire_buf *w))
{
	struct wire_buf w;
	struct wire_msg m;
	wire_begin(&w, WIRE_PING, 1);
	wire_end(&w);
	patch(&w);
	return wire_parse(w.b, w.n, 0, &m);
}

static void bad_magic(struct wire_buf *w) { w->b[3] ^= 0x40; }
static void bad_version(struct wire_buf *w) { w->b[4] = 2; }
static void bad_length(struct wire_buf *w) { w->b[8]++; }
static void bad_type(struct wire_buf *w) { w->b[6] = 63; }
static void short_rec(struct wire_buf *w) { w->n = 15; }
static void long_rec(struct wire_buf *w)
{
	w->n = WIRE_MAX_BYTES + 1; /* the buffer is that large: the parser must not look */
	w->b[8] = (uint8_t)w->n;
	w->b[9] = (uint8_t)(w->n >> 8);
}
static void trailing(struct wire_buf *w)
{
	w->b[w->n++] = 1; /* half a field header */
	w->b[8] = (uint8_t)w->n;
}

static void test_refusals(void **s)
{
	(void)s;
	struct wire_buf w;
	struct wire_msg m;
	assert_int_equal(ping_with(bad_magic), WIRE_EMAGIC);
	assert_int_equal(ping_with(bad_version), WIRE_EVERSION);
	assert_int_equal(ping_with(bad_length), WIRE_ELENGTH);
	assert_int_equal(ping_with(bad_type), WIRE_ETYPE);
	assert_int_equal(ping_with(short_rec), WIRE_ESHORT);
	assert_int_equal(ping_with(trailing), WIRE_EFIELD);
	struct wire_buf *big = malloc(sizeof(*big) + 16);
	wire_begin(big, WIRE_PING, 1);
	wire_end(big);
	long_rec(big);
	assert_int_equal(wire_parse(big->b, big->n, 0, &m), WIRE_EBIG);
	free(big);

	wire_begin(&w, WIRE_PING, 1); /* a field PING does not take */
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_ETAG);
	wire_begin(&w, WIRE_OPEN, 1); /* an unknown tag */
	wire_u32(&w, 60, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_ETAG);
	wire_begin(&w, WIRE_OPEN, 1); /* a u32 of 8 bytes */
	wire_str(&w, WT_NAME, "x");
	wire_u64(&w, WT_WRITE, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_EFIELD);
	wire_begin(&w, WIRE_OPEN, 1); /* unterminated string */
	wire_bytes(&w, WT_NAME, "abc", 3);
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_ESTRING);
	wire_begin(&w, WIRE_OPEN, 1); /* empty string */
	wire_bytes(&w, WT_NAME, "", 1);
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_ESTRING);
	wire_begin(&w, WIRE_OPEN, 1);
	wire_u32(&w, WT_WRITE, 1);
	wire_u32(&w, WT_WRITE, 0);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_EDUP);
	wire_begin(&w, WIRE_OPEN, 1);
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_EMISSING);
	/* more fields than a message has tags: refused (the first repeat) */
	wire_begin(&w, WIRE_ERROR, 1);
	wire_end(&w);
	for (int i = 0; i < WIRE_MAX_FIELDS + 1; i++) {
		uint8_t f[8] = {WT_CODE, 0, 4, 0, 0, 0, 0, 0};
		memcpy(w.b + w.n, f, 8);
		w.n += 8;
	}
	w.b[8] = (uint8_t)w.n;
	w.b[9] = (uint8_t)(w.n >> 8);
	assert_int_equal(wire_parse(w.b, w.n, 0, &m), WIRE_EDUP);
	for (int e = 0; e >= WIRE_EMANY; e--)
		assert_true(strlen(wire_strerror(e)) >= 2);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_transport(void **s)
{
	(void)s;
	int sv[2], fds[WIRE_MAX_FDS], nfds;
	uint8_t buf[WIRE_MAX_BYTES];
	struct wire_buf w;
	struct wire_msg m;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);

	int nul = open("/dev/null", O_RDONLY);
	wire_begin(&w, WIRE_PROCS, 5);
	wire_end(&w);
	assert_int_equal(wire_send(sv[0], &w, &nul, 1, false), 0);
	ssize_t k = wire_recv(sv[1], buf, fds, &nfds, false);
	assert_int_equal(k, (ssize_t)w.n);
	assert_int_equal(nfds, 1);
	assert_true(fds[0] != nul);
	assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(wire_parse(buf, (size_t)k, nfds, &m), 0);
	close(fds[0]);

	/* nothing there, non-blocking */
	assert_int_equal(wire_recv(sv[1], buf, fds, &nfds, true), -EAGAIN);

	/* too long: refused, the rest of the stream still fine */
	static uint8_t huge[WIRE_MAX_BYTES + 100];
	assert_int_equal(send(sv[0], huge, sizeof(huge), 0), (ssize_t)sizeof(huge));
	assert_int_equal(wire_recv(sv[1], buf, fds, &nfds, false), -EMSGSIZE);

	/* more descriptors than any message takes: all closed */
	int before = open_fds();
	int many[8] = {nul, nul, nul, nul, nul, nul, nul, nul};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(many))];
	} ctl;
	struct iovec iov = {.iov_base = w.b, .iov_len = w.n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(many));
	memcpy(CMSG_DATA(c), many, sizeof(many));
	assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)w.n);
	assert_int_equal(wire_recv(sv[1], buf, fds, &nfds, false), -EMSGSIZE);
	assert_int_equal(nfds, 0);
	assert_int_equal(open_fds(), before);

	close(sv[0]);
	assert_int_equal(wire_recv(sv[1], buf, fds, &nfds, false), 0); /* end of file */
	close(sv[1]);
	close(nul);
}

/* Every file of the corpus through the fuzz target (which aborts on a
 * broken invariant): the corpus found by make fuzz-wire, kept. */
static void test_corpus(void **s)
{
	(void)s;
	char dir[512], path[1024];
	const char *src = getenv("PSTM_SRC");
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/wire_corpus", src && *src ? src : ".");
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int files = 0;
	static uint8_t data[2 * WIRE_MAX_BYTES];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		ssize_t n = read(fd, data, sizeof(data));
		close(fd);
		assert_true(n >= 0);
		LLVMFuzzerTestOneInput(data, (size_t)n);
		files++;
	}
	closedir(d);
	print_message("# %d corpus inputs replayed\n", files);
	assert_true(files >= 20);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_round_trip),
	cmocka_unit_test(test_refusals),
	cmocka_unit_test(test_transport),
	cmocka_unit_test(test_corpus),
};

TEST_MAIN(tests)
