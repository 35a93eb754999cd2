/*
 * proc.c - the process and slot tables: attaching and detaching a
 * process, claiming and releasing a slot per transacting thread, and
 * whether the process an entry or tag names is alive.
 *
 * A process is identified by pid plus its start time from /proc/PID/stat,
 * so a reused pid is never taken for the old process; a zombie counts as
 * dead (unless other threads of it still run).  Recovering the dead is
 * lib/recovery.c.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/* /proc/PID/stat's state letter (field 3) into *state; its start time
 * (field 22), 0 if no such pid or unreadable. */
static uint64_t stat_read(pid_t pid, char *state)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *p;
	unsigned long long start = 0;

	*state = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may contain spaces and ')' */
	if (!p)
		return 0;
	/* after ") ": field 3 (state) ... field 22 (starttime) */
	if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u "
			  "%*u %*d %*d %*d %*d %*d %*d %llu",
		   state, &start) != 2)
		return 0;
	return start;
}

uint64_t proc_start_ticks(pid_t pid, bool *zombie)
{
	char state;
	uint64_t start = stat_read(pid, &state);

	if (zombie)
		*zombie = false;
	if (!start)
		return 0;
	if (zombie && (state == 'Z' || state == 'X')) {
		/*
		 * The leader thread is a zombie.  That is also what a live
		 * process looks like whose main thread called pthread_exit
		 * while others run: alive while it has more than one thread
		 * (a reviewer's finding: taken for dead, its slots would be
		 * "recovered" and its flush token taken while in use).
		 */
		char path[64];
		*zombie = true;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		FILE *f = fopen(path, "re");
		if (f) {
			char line[256];
			unsigned long threads = 0;
			while (fgets(line, sizeof(line), f))
				if (sscanf(line, "Threads: %lu", &threads) == 1)
					break;
			fclose(f);
			*zombie = threads <= 1;
		}
	}
	return start;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool proc_entry_alive(struct pstm_region *r, uint32_t p, uint64_t ps)
{
	struct proc_entry *e = &r->procs[p];
	uint64_t pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
	uint64_t start = atomic_load_explicit(&e->start_ticks, memory_order_relaxed);
	bool zombie;

	/* pid/start are stable while the state word is unchanged */
	if (atomic_load_explicit(&e->state, memory_order_acquire) != ps)
		return true; /* changed under us: let the caller look again */
	if (p == r->proc_idx && ps == r->proc_state)
		return true;
	uint64_t now = proc_start_ticks((pid_t)pid, &zombie);
	return now != 0 && now == start && !zombie;
}

uint64_t proc_my_tag(struct pstm_region *r)
{
	return PROC_GEN(r->proc_state) << 16 | (r->proc_idx + 1);
}

bool slot_owner_stopped(struct pstm_region *r, uint32_t s)
{
	if (s >= r->sb.max_slots)
		return false;
	uint64_t st = atomic_load_explicit(&r->slots[s].state, memory_order_acquire);
	uint32_t p = (uint32_t)SLOT_PROC(st);
	if (SLOT_ST(st) != SLOT_ACTIVE || p >= r->sb.max_procs)
		return false;
	struct proc_entry *e = &r->procs[p];
	uint64_t ps = atomic_load_explicit(&e->state, memory_order_acquire);
	uint64_t pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
	uint64_t start = atomic_load_explicit(&e->start_ticks, memory_order_relaxed);
	char state;
	if (PROC_ST(ps) != PROC_ALIVE || p == r->proc_idx ||
	    stat_read((pid_t)pid, &state) != start ||
	    atomic_load_explicit(&e->state, memory_order_acquire) != ps)
		return false;
	return state == 'T' || state == 't';
}

bool proc_tag_dead(struct pstm_region *r, uint64_t tag)
{
	uint32_t p = (uint32_t)(tag & 0xffff);
	if (p == 0 || p > r->sb.max_procs)
		return true; /* names nobody: damage, take it */
	p--;
	uint64_t s = atomic_load_explicit(&r->procs[p].state, memory_order_acquire);
	if (PROC_ST(s) != PROC_ALIVE || PROC_GEN(s) != tag >> 16)
		return true;
	return !proc_entry_alive(r, p, s);
}

int proc_attach(struct pstm_region *r)
{
	pid_t pid = getpid();
	uint64_t start = proc_start_ticks(pid, NULL);

	for (uint32_t i = 0; i < r->sb.max_procs; i++) {
		struct proc_entry *e = &r->procs[i];
		uint64_t s = atomic_load_explicit(&e->state, memory_order_acquire);
		if (PROC_ST(s) != PROC_FREE)
			continue;
		/* FREE entries are written only by attachers, who hold the
		 * region flock: no other writer of pid/start now */
		atomic_store_explicit(&e->pid, (uint64_t)pid, memory_order_relaxed);
		atomic_store_explicit(&e->start_ticks, start, memory_order_relaxed);
		atomic_store_explicit(&e->attach_ns, now_ns(), memory_order_relaxed);
		for (int k = 0; k < 8; k++)
			atomic_store_explicit(&e->stats[k], 0, memory_order_relaxed);
		uint64_t ns = proc_pack(PROC_GEN(s) + 1, 0, PROC_ALIVE);
		if (atomic_compare_exchange_strong_explicit(
			    &e->state, &s, ns, memory_order_release,
			    memory_order_relaxed)) {
			r->proc_idx = i;
			r->proc_state = ns;
			return 0;
		}
	}
	return PSTM_EPROCFULL;
}

void proc_detach(struct pstm_region *r)
{
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load_explicit(&r->slots[s].state,
						   memory_order_acquire);
		if (SLOT_ST(st) == SLOT_ACTIVE && SLOT_PROC(st) == r->proc_idx)
			slot_release(r, s);
	}
	uint64_t ps = r->proc_state;
	atomic_compare_exchange_strong_explicit(
		&r->procs[r->proc_idx].state, &ps,
		proc_pack(PROC_GEN(ps), 0, PROC_FREE), memory_order_release,
		memory_order_relaxed);
}

int slot_claim(struct pstm_region *r)
{
	uint32_t n = r->sb.max_slots;
	uint32_t first = (uint32_t)((uint64_t)r->proc_idx * 7) % n;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t s = (first + k) % n;
		struct slot *sl = &r->slots[s];
		uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
		if (SLOT_ST(st) != SLOT_FREE)
			continue;
		uint64_t ns = slot_pack(r->proc_idx, SLOT_GEN(st) + 1, SLOT_ACTIVE);
		if (atomic_compare_exchange_strong_explicit(
			    &sl->state, &st, ns, memory_order_acquire,
			    memory_order_relaxed))
			return (int)s;
	}
	return -1;
}

void slot_release(struct pstm_region *r, uint32_t s)
{
	struct slot *sl = &r->slots[s];
	struct proc_entry *e = &r->procs[r->proc_idx];
	uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);

	for (int k = 0; k < 8; k++) {
		uint64_t v = atomic_load_explicit(&sl->stats[k], memory_order_relaxed);
		atomic_fetch_add_explicit(&e->stats[k], v, memory_order_relaxed);
		atomic_store_explicit(&sl->stats[k], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&sl->state, slot_pack(0, SLOT_GEN(st), SLOT_FREE),
			      memory_order_release);
}
