/*
 * fuzz_wire.c - libFuzzer target for pstmd's message parser (lib/wire.c),
 * the code that reads every byte a local client sends the daemon.  An
 * input is one byte (its low two bits: how many descriptors came with
 * the record) and then the record.  The parser must never read outside
 * the record; whatever it accepts must hold together: every string ends
 * inside the record with its only NUL, every field its schema names is
 * there, and building the same message again (lib/wire.c's builder)
 * gives a record the parser reads back to the same fields.
 *   make fuzz-wire FUZZ_SECONDS=300
 * tests/test_wire.c replays the corpus (tests/fuzz/wire_corpus/) in
 * make test with this same function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                             \
	do {                                                                 \
		if (!(c))                                                    \
			abort();                                             \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_msg m, again;
	static struct wire_buf w;
	if (size < 1)
		return 0;
	/* a copy of exactly the record's size: reading past it is an ASan
	 * error, not a lucky read of the next input byte */
	size_t n = size - 1;
	uint8_t *rec = malloc(n ? n : 1);
	CHECK(rec);
	memcpy(rec, data + 1, n);
	int nfds = data[0] & 3;
	int rc = wire_parse(rec, n, nfds, &m);
	CHECK(rc <= 0 && rc >= WIRE_EMANY);
	CHECK(wire_strerror(rc)[0]);
	if (rc == 0) {
		CHECK(n >= WIRE_HDR_BYTES && n <= WIRE_MAX_BYTES);
		wire_begin(&w, m.type, m.id);
		for (int t = 1; t < WT_COUNT; t++) {
			size_t bytes = 0;
			if (!wire_has(&m, t))
				continue;
			switch (wire_tag_kind(t, &bytes)) {
			case WK_U32:
				CHECK(m.u[t] <= UINT32_MAX);
				wire_u32(&w, t, (uint32_t)m.u[t]);
				break;
			case WK_U64:
				wire_u64(&w, t, m.u[t]);
				break;
			case WK_STR: {
				const uint8_t *s = (const uint8_t *)m.s[t];
				CHECK(s >= rec && s < rec + n);
				size_t len = strlen(m.s[t]); /* must stop inside */
				CHECK(len > 0 && s + len < rec + n);
				wire_str(&w, t, m.s[t]);
				break;
			}
			case WK_BYTES:
				CHECK(m.b[t] >= rec && m.b[t] + bytes <= rec + n);
				wire_bytes(&w, t, m.b[t], bytes);
				break;
			default:
				abort(); /* a tag the parser should have refused */
			}
		}
		int len = wire_end(&w);
		CHECK(len > 0 && (size_t)len == n); /* the same fields, in tag order */
		CHECK(wire_parse(w.b, (size_t)len, nfds, &again) == 0);
		CHECK(again.type == m.type && again.id == m.id && again.has == m.has);
		for (int t = 1; t < WT_COUNT; t++) {
			size_t bytes = 0;
			if (!wire_has(&m, t))
				continue;
			enum wire_kind k = wire_tag_kind(t, &bytes);
			if (k == WK_STR)
				CHECK(strcmp(m.s[t], again.s[t]) == 0);
			else if (k == WK_BYTES)
				CHECK(memcmp(m.b[t], again.b[t], bytes) == 0);
			else
				CHECK(m.u[t] == again.u[t]);
		}
	}
	free(rec);
	return 0;
}
