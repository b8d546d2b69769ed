/*
 * segfs, the supervisor: what its files share.
 *
 *   main.c     the command line, mounting, and the loop that watches the
 *              server, the signals and the control socket
 *   server.c   running a server, and hearing what it says (common/proto.h)
 *   pins.c     the descriptors it holds for the server: the segments'
 *              files
 *   control.c  `segfs --upgrade`: its socket, and the command's side
 *   systemd.c  sd_notify and the descriptor store (-o fdstore)
 *   mountinfo.c  finding a mount of segfs without asking it
 *
 * The supervisor serves no request: nothing a client does runs its code,
 * so nothing a client does can make it crash.  It holds what must outlive
 * the server (the /dev/fuse descriptor, the two private tmpfses, the
 * pins) and runs the server again when it dies.
 */
#ifndef SEGFS_SUPER_SUPER_H
#define SEGFS_SUPER_SUPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/opts.h"
#include "common/proto.h"

/* One server process, and its socket. */
struct server {
	pid_t pid;
	int pidfd;                     /* readable once it has exited */
	int ctl;                       /* our end of its socket, or -1 */
	char path[4096];               /* its program */
	bool ready;                    /* it said P_READY */
	bool compatible;               /* "check": it said P_COMPATIBLE */
	bool stopped;                  /* it said P_STOPPED */
	char fatal[PROTO_TEXT_MAX + 1];
};

struct super {
	struct segfs_opts *o;
	int fuse;                      /* the connection */
	int data, state;               /* the tmpfses the first server handed over */
	bool fragile;                  /* a server's death ends the mount */
	char fragile_why[256];
	int pin_base, pin_limit;       /* descriptor numbers of pins */
	unsigned char *pinned;         /* per number: held now */
	unsigned char *live;           /* P_SYNC_*: the numbers a new server knows */
	struct server cur;             /* the one serving */
	struct server next;            /* an upgrade's, while it checks and takes over */
	char resent[4][200];           /* what the last server took over from the dead one */
	int nresent;
	double deaths[1000];           /* times of the last crashes, for crash_loop */
	int ndeaths;
	bool syslog;
	bool fdstore;                  /* -o fdstore: systemd keeps fuse, data, state */
	bool ready_told;               /* READY=1 went to systemd */
};

/* server.c */
int server_start(struct super *s, struct server *srv, const char *path, const char *takeover,
		 char **argv);
/*
 * Handles every message srv's socket holds now: how many, or -ECONNRESET
 * once its socket is closed (-errno).
 */
int server_hear(struct super *s, struct server *srv);
/* Handles every message left on srv's socket (a dead server's), then closes it. */
void server_drain(struct super *s, struct server *srv);
/* Reaps an exited server: its wait status. */
int server_reap(struct server *srv);
void server_kill(struct server *srv, int sig);
/* The server program beside this one, else the installed one. */
int server_path(char *buf, size_t size);

/* pins.c */
int pins_init(struct super *s);
void pins_hold(struct super *s, int num, int fd);
void pins_drop(struct super *s, int num);
void pins_sync_begin(struct super *s);
void pins_sync_live(struct super *s, const uint64_t *nums, size_t n);
void pins_sync_end(struct super *s);

/* control.c */
int control_listen(const char *mountpoint);
/* Reads one command from a client of the control socket: 0 and the server path. */
int control_read(int client, char *path, size_t size);
void control_say(int client, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `segfs --upgrade [--server=PATH] MOUNTPOINT`: the command's side. */
int control_upgrade(int argc, char **argv);

/* remount.c */
/* Whether the options ask for a remount (`mount -o remount`, through mount.fuse3). */
bool remount_asked(int argc, char **argv);
/* Changes the flags of the segfs mounted on the command line's mount point. */
int control_remount(int argc, char **argv);

/* mountinfo.c */
/*
 * The device number of the segfs mounted last on `mountpoint` (absolute):
 * 0, or -ENOENT if none is.
 */
int mountinfo_segfs(const char *mountpoint, unsigned *maj, unsigned *min);

/* systemd.c */
/* Sends `state` (and fd, if not -1) to $NOTIFY_SOCKET: 0, or -errno (-ENOTCONN: none). */
int sd_notify_fd(const char *state, int fd);
/* FDSTORE=1 with FDNAME=name. */
int fdstore_keep(const char *name, int fd);
/* FDSTOREREMOVE=1: systemd closes what it keeps under `name`. */
void fdstore_forget(const char *name);
/* The descriptor systemd passed under `name` (LISTEN_FDNAMES), or -1. */
int fdstore_take(const char *name);
/* Closes what was passed and not taken, and forgets the LISTEN_* variables. */
void fdstore_done(void);

/* main.c: one line to the log (stderr, or syslog once detached). */
void say(struct super *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double now_s(void);

#endif
