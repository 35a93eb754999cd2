/*
 * cmd_top.c - pstm top: the processes attached to a region and what their
 * transactions do per second, refreshed every interval.  Each refresh
 * reads the process and slot tables through a read-only mapping, as pstm
 * info does (region_inspect_procs): nothing attaches, nothing is
 * recovered, nothing is written.  A rate is the difference of two
 * refreshes' totals over the time between them.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "emit.h"
#include "inspect.h"
#include "member.h"

static const char help[] =
	"usage: pstm top URI [--interval MS] [--count N | --once] [--json|--pretty]\n"
	"Per attached process, refreshed every --interval (default 1000 ms):\n"
	"commits, read-only commits, aborts by cause (read, lock, validate,\n"
	"user), escalations and recoveries per second.  Reads the process and\n"
	"slot tables read-only, like pstm info: attaches and recovers nothing;\n"
	"the processes come from pstmd when it serves the region (as in pstm\n"
	"procs; PSTM_DAEMON=off does not ask).\n"
	"--count N: stop after N refreshes (default: until interrupted);\n"
	"--once: one refresh (the rates over one interval), for scripts.  On a\n"
	"terminal the screen is redrawn; otherwise each refresh is a block of\n"
	"plain lines; JSON: one object per refresh.  A thread's counts reach\n"
	"the region every 256 update transactions and when it ends, so rates\n"
	"of processes that rarely commit (read-only ones) show late.\n";

static const struct cli_num opt_interval = {"--interval", 10, 3600000, 0};
static const struct cli_num opt_count = {"--count", 1, 1000000000, 0};

/* the statistics, in the order of struct pstm_stats */
enum { COMMITS, RO, AB_READ, AB_LOCK, AB_VALIDATE, AB_USER, ESCALATIONS,
       RECOVERIES, NSTATS };
static const char *const keys[NSTATS] = {
	"commits", "commits_ro", "aborts_read", "aborts_lock", "aborts_validate",
	"aborts_user", "escalations", "recoveries"};
static const char *const heads[NSTATS] = {
	"COMMIT/S", "RO/S", "AB-READ/S", "AB-LOCK/S", "AB-VAL/S", "AB-USER/S",
	"ESC/S", "REC/S"};
static const char *const proc_state[] = {
	[INSPECT_ALIVE] = "alive",
	[INSPECT_DEAD] = "dead",
	[INSPECT_RECOVERING] = "recovering",
};

static void stats_of(const struct pstm_stats *s, uint64_t v[NSTATS])
{
	v[COMMITS] = s->commits;
	v[RO] = s->commits_ro;
	v[AB_READ] = s->aborts_read;
	v[AB_LOCK] = s->aborts_lock;
	v[AB_VALIDATE] = s->aborts_validate;
	v[AB_USER] = s->aborts_user;
	v[ESCALATIONS] = s->escalations;
	v[RECOVERIES] = s->recoveries;
}

struct sample {
	struct inspect_report rep;
	uint64_t t_ns;   /* CLOCK_MONOTONIC when taken */
	bool from_pstmd; /* rep.procs: pstmd's view of them */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The region's tables read here; the processes from pstmd when it
 * serves the region (as pstm procs), else from the tables too. */
static int take(const char *uri, struct sample *s)
{
	int rc = region_inspect_procs(uri, &s->rep);
	s->t_ns = now_ns();
	s->from_pstmd = false;
	if (rc)
		return rc;
	struct member_procs mp;
	if (cli_ask_pstmd(uri, &mp) == 0) {
		free(s->rep.procs);
		s->rep.procs = mp.procs;
		s->rep.nprocs = mp.n;
		mp.procs = NULL;
		member_procs_free(&mp);
		s->from_pstmd = true;
	}
	return 0;
}

/* Per-second rates of process @p since sample @prev (a process not in it
 * attached meanwhile: its totals are all new). */
static void rates(const struct sample *prev, const struct inspect_proc *p,
		  double secs, double out[NSTATS], uint64_t tot[NSTATS])
{
	uint64_t before[NSTATS] = {0};
	stats_of(&p->st, tot);
	for (uint32_t i = 0; i < prev->rep.nprocs; i++) {
		const struct inspect_proc *q = &prev->rep.procs[i];
		if (q->entry == p->entry && q->pid == p->pid) {
			stats_of(&q->st, before);
			break;
		}
	}
	for (int k = 0; k < NSTATS; k++)
		out[k] = tot[k] >= before[k] ? (double)(tot[k] - before[k]) / secs : 0;
}

static void utc_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "?");
}

static void print_text(const char *uri, const struct sample *prev,
		       const struct sample *cur, bool tty)
{
	const struct inspect_report *i = &cur->rep;
	double secs = (double)(cur->t_ns - prev->t_ns) / 1e9, sum[NSTATS] = {0};
	char when[32];
	utc_now(when);
	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("pstm top %s  %s  interval %.2f s  ", uri, when, secs);
	if (i->runtime != INSPECT_RT_FOUND) {
		printf("no runtime: nobody has the region open\n");
		return;
	}
	printf("clock %llu  %u process%s%s\n", (unsigned long long)i->clock, i->nprocs,
	       i->nprocs == 1 ? "" : "es", cur->from_pstmd ? "  (from pstmd)" : "");
	printf("  %5s %8s %-10s", "ENTRY", "PID", "STATE");
	for (int k = 0; k < NSTATS; k++)
		printf(" %9s", heads[k]);
	printf("\n");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct inspect_proc *p = &i->procs[n];
		double r[NSTATS];
		uint64_t tot[NSTATS];
		rates(prev, p, secs, r, tot);
		printf("  %5u %8llu %-10s", p->entry, (unsigned long long)p->pid,
		       proc_state[p->state]);
		for (int k = 0; k < NSTATS; k++) {
			printf(" %9.0f", r[k]);
			sum[k] += r[k];
		}
		printf("\n");
	}
	printf("  %5s %8s %-10s", "total", "", "");
	for (int k = 0; k < NSTATS; k++)
		printf(" %9.0f", sum[k]);
	printf("\n");
}

static int print_json(const char *uri, const struct sample *prev,
		      const struct sample *cur)
{
	const struct inspect_report *i = &cur->rep;
	double secs = (double)(cur->t_ns - prev->t_ns) / 1e9, sum[NSTATS] = {0};
	char when[32];
	struct emit e;
	utc_now(when);
	cli_json_begin(&e, uri);
	emit_str(&e, "time", when);
	emit_fixed(&e, "interval_s", secs, 3);
	emit_str(&e, "source", cur->from_pstmd ? "pstmd" : "region");
	emit_bool(&e, "runtime_found", i->runtime == INSPECT_RT_FOUND);
	if (i->runtime == INSPECT_RT_FOUND)
		emit_u64(&e, "clock", i->clock);
	else
		emit_null(&e, "clock");
	emit_array(&e, "processes");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct inspect_proc *p = &i->procs[n];
		double r[NSTATS];
		uint64_t tot[NSTATS];
		char key[32];
		rates(prev, p, secs, r, tot);
		emit_object(&e, NULL);
		emit_u64(&e, "entry", p->entry);
		emit_u64(&e, "pid", p->pid);
		emit_str(&e, "state", proc_state[p->state]);
		for (int k = 0; k < NSTATS; k++) {
			emit_u64(&e, keys[k], tot[k]);
			snprintf(key, sizeof(key), "%s_per_s", keys[k]);
			emit_fixed(&e, key, r[k], 1);
			sum[k] += r[k];
		}
		emit_close(&e);
	}
	emit_close(&e);
	emit_object(&e, "total_per_s");
	for (int k = 0; k < NSTATS; k++)
		emit_fixed(&e, keys[k], sum[k], 1);
	emit_close(&e);
	int rc = cli_json_end(&e, uri);
	fflush(stdout);
	return rc;
}

int cmd_top(int argc, char **argv)
{
	static const struct option lo[] = {{"interval", required_argument, 0, 'i'},
					   {"count", required_argument, 0, 'n'},
					   {"once", no_argument, 0, 'o'},
					   {"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'P'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	uint64_t interval_ms = 1000, count = 0;
	bool json = false;
	int c, rc = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'i': rc = cli_parse_option(&opt_interval, optarg, &interval_ms); break;
		case 'n': rc = cli_parse_option(&opt_count, optarg, &count); break;
		case 'o': count = 1; break;
		case 'j':
		case 'P':
			json = true;
			cli_set_json(c == 'P');
			break;
		case 'h': fputs(help, stdout); return 0;
		default: return 2; /* getopt said why */
		}
	}
	if (rc)
		return rc;
	if (optind != argc - 1)
		return cli_usage_error("top needs exactly one URI");
	const char *uri = argv[optind];
	bool tty = !json && isatty(STDOUT_FILENO);
	struct sample s[2];
	memset(s, 0, sizeof(s));
	if ((rc = take(uri, &s[0])) != 0)
		return cli_fail("cannot read", uri, rc);
	for (uint64_t n = 0; count == 0 || n < count; n++) {
		struct timespec ts = {(time_t)(interval_ms / 1000),
				      (long)(interval_ms % 1000) * 1000000};
		struct sample *prev = &s[n % 2], *cur = &s[(n + 1) % 2];
		nanosleep(&ts, NULL);
		if ((rc = take(uri, cur)) != 0) {
			inspect_report_free(&prev->rep);
			return cli_fail("cannot read", uri, rc);
		}
		if (json) {
			rc = print_json(uri, prev, cur);
		} else {
			print_text(uri, prev, cur, tty);
			fflush(stdout);
		}
		inspect_report_free(&prev->rep);
		if (rc)
			break;
	}
	inspect_report_free(&s[0].rep);
	inspect_report_free(&s[1].rep);
	return rc;
}
