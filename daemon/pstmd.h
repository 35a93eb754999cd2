/*
 * pstmd.h - what the files of pstmd share: its configuration, its state
 * (one struct, passed around, touched by the loop thread only; beside it
 * run the flush threads of the library inside the regions it holds open
 * and the threads of opening.c, each of which touches nothing but its
 * own pstm_open), and each file's entry points.
 *
 *   main.c      command line, sockets, signals, readiness, the main loop
 *   loop.c      the epoll loop
 *   config.c    the configuration file
 *   conn.c      client connections: limits, reading, replies
 *   registry.c  regions and members: pidfds, recovery, adoption
 *   grant.c     opening regions for clients (SO_PEERCRED, SCM_RIGHTS)
 *   opening.c   pstmd's own opens of regions, in threads off the loop
 *   metrics.c   the Prometheus text exposition
 */
#ifndef PSTMD_H
#define PSTMD_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "loop.h"
#include "wire.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

/* A grant line of the configuration: who may open a region by name. */
struct grant_rule {
	char name[256];   /* a region name, or "*" for every region */
	bool is_group;    /* id is a gid (@group) */
	bool any;         /* every user ("*") */
	uint32_t id;      /* uid or gid */
	bool write;       /* rw; else ro */
};

struct pstmd_config {
	char socket[SUN_PATH_MAX];  /* where to listen */
	char state[PATH_MAX];       /* the list of served regions */
	char directory[PATH_MAX];   /* regions opened by name; "" none */
	char metrics[SUN_PATH_MAX]; /* Prometheus text; "" none */
	unsigned max_conns;         /* connections at once */
	unsigned max_conns_per_uid;
	unsigned idle_ms;           /* a connection that says nothing */
	struct grant_rule *grants;
	unsigned ngrants;
};

struct conn;
struct dregion;
struct pstm_region;

struct pstmd {
	struct pstmd_config cfg;
	struct loop *loop;
	int listen_fd;
	bool socket_ours;           /* we bound it (not socket activation):
				       removed at exit */
	int lock_fd;                /* flock of SOCKET.lock */
	int signal_fd;
	int metrics_fd;
	bool stop;
	struct conn *conns;
	unsigned nconns;
	struct dregion *regions;
	unsigned nregions, nmembers;
	unsigned npending;          /* regions being opened (opening.c) */
	uint64_t recoveries;        /* dead processes pstmd recovered */
	uint64_t started_ms;
};

/* monotonic milliseconds */
uint64_t pstmd_now_ms(void);
__attribute__((format(printf, 1, 2))) void pstmd_log(const char *fmt, ...);

/* config.c: read FILE into @c (defaults already in it).  0, or -1 with
 * the reason ("FILE:LINE: ...") in @err. */
int config_load(struct pstmd_config *c, const char *path, char *err, size_t n);
void config_free(struct pstmd_config *c);

/* conn.c */
void conn_accept(struct loop *l, int fd, uint32_t events, void *arg);
/* close connections idle past their deadline; the next deadline (ms,
 * absolute) or UINT64_MAX */
uint64_t conn_sweep(struct pstmd *d);
/* queue @w (and its descriptors, sent at once or not at all) to @c.
 * -1 if the connection had to be dropped (it is closed later). */
int conn_send(struct conn *c, struct wire_buf *w, const int *fds, int nfds);
/* an ERROR reply with code and text */
__attribute__((format(printf, 4, 5)))
int conn_error(struct conn *c, uint32_t id, int code, const char *fmt, ...);
/* the peer's credentials (SO_PEERCRED at accept) */
void conn_peer(const struct conn *c, pid_t *pid, uid_t *uid, gid_t *gid);
/* the peer's groups (SO_PEERGROUPS, at least its primary gid): how many */
int conn_peer_groups(const struct conn *c, gid_t *g, int max);
/* the member this connection registered, if any */
void conn_set_member(struct conn *c, void *member);
/* a request of @c waits for pstmd's open of its region (opening.c):
 * no other request and no idle limit meanwhile */
void conn_set_waiting(struct conn *c, bool waiting);
void conn_close_all(struct pstmd *d);

/* registry.c */
/* REGISTER from @c with the region file @fd (closed by the caller). */
void registry_register(struct pstmd *d, struct conn *c, const struct wire_msg *m,
		       int fd);
/* the connection of member @m closed */
void registry_conn_gone(struct pstmd *d, void *member);
/* connection @c closes: forget the requests of it that wait */
void registry_conn_closed(struct pstmd *d, struct conn *c);
/* PROCS and RELEASE with the region file @fd */
void registry_procs(struct pstmd *d, struct conn *c, const struct wire_msg *m,
		    int fd);
void registry_release(struct pstmd *d, struct conn *c, const struct wire_msg *m,
		      int fd);
/* adopt the regions of the state file that still have live processes */
void registry_adopt(struct pstmd *d);
/* periodic work (members that left, new processes, retries): the next
 * deadline (ms, absolute) */
uint64_t registry_tick(struct pstmd *d);
void registry_close_all(struct pstmd *d);
/* for metrics.c: call fn for every served region */
void registry_each(struct pstmd *d,
		   void (*fn)(void *arg, const char *path, struct pstm_region *r,
			      unsigned members, uint64_t recoveries),
		   void *arg);
/* An OPEN that passed the access check, waiting for its region. */
struct grant_req {
	uint32_t id;              /* the request's */
	int got;                  /* 1 read, 2 read-write */
	uid_t uid;
	char name[256];
	char path[PATH_MAX];
};
/* serve region @q->path for @c's OPEN: grant_done is called at once if
 * pstmd serves it already, else from the loop once pstmd's own open of it
 * (opening.c) is done */
void registry_serve_path(struct pstmd *d, struct conn *c, const struct grant_req *q);

/* grant.c: OPEN from @c */
void grant_open(struct pstmd *d, struct conn *c, const struct wire_msg *m);
/* the region of @q is served (@r), or could not be (@err): reply to @c */
void grant_done(struct pstmd *d, struct conn *c, const struct grant_req *q,
		struct pstm_region *r, int err);

/* opening.c: pstm_open(@uri) in a thread of its own, given up after 2 s
 * (SIGALRM interrupts the flock); done(d, arg, handle or NULL, err) is
 * called from the loop when it finished.  0, or PSTM_ENOMEM (done is
 * then never called). */
typedef void (*opening_fn)(struct pstmd *d, void *arg, struct pstm_region *r, int err);
int opening_start(struct pstmd *d, const char *uri, opening_fn done, void *arg);
/* signal the opens that are late: the next deadline (ms, absolute) */
uint64_t opening_tick(void);
/* stopping: interrupt every open and wait for it (each done is called) */
void opening_stop_all(struct pstmd *d);
/* is @name a plain region name (no '/', no leading '.', no "..")? */
bool grant_name_ok(const char *name);

/* metrics.c */
void metrics_accept(struct loop *l, int fd, uint32_t events, void *arg);

#endif
