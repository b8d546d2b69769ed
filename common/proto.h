/*
 * Between the supervisor (`segfs`, super/) and the server it runs
 * (`segfs-server`, server/).
 *
 * The supervisor mounts, holds what must outlive the server (the
 * /dev/fuse descriptor, the private tmpfs of the segments' files, the
 * state tmpfs of the tree and the records, and a descriptor of every
 * segment's file: its pins), runs the server, and runs it again when it
 * dies.  The server serves; it hands the supervisor what the supervisor
 * is to hold, over a socket of its own.
 *
 * Starting the server.  The supervisor runs the server program with the
 * user's own arguments, and in the environment:
 *
 *   SEGFS_FDS       "fuse=N,ctl=N[,data=N,state=N]": the inherited
 *                   descriptors.  data and state are there once a server
 *                   has handed them over (P_KEEP).
 *   SEGFS_PINS      "PID:BASE:LIMIT": the supervisor's pid and the range of
 *                   its descriptor numbers the server may pin at.
 *   SEGFS_MOUNTPOINT  the mount point, absolute: the server must not
 *                   resolve it (common/opts.h says why).
 *   SEGFS_TAKEOVER  absent: the first server, which answers the kernel's
 *                   INIT; "restart": a server after a crash, which takes
 *                   the connection over, has the kernel send again what
 *                   the dead one had taken (FUSE_NOTIFY_RESEND) and
 *                   answers each request once; "check": an upgrade's new
 *                   server, which checks that it can read what the running
 *                   one keeps, says P_COMPATIBLE (or P_FATAL and exit
 *                   PROTO_EXIT_REFUSE), then waits for P_GO before taking
 *                   over as "restart" does.
 *
 * Its exit status.  0: the connection ended (unmount), or the server
 * handed over (P_HANDOVER), or was told to stop (SIGTERM);
 * PROTO_EXIT_REFUSE: it cannot serve what it was given (incompatible
 * saved state): the supervisor must not run it again; PROTO_EXIT_USAGE:
 * bad options.  Anything else, and death by a signal, is a crash.
 *
 * Messages are datagrams of a SOCK_SEQPACKET socketpair: a struct
 * proto_msg, its text after it, and at most one descriptor.  The
 * supervisor handles them in order, so that a pin made and dropped
 * arrives as made, then dropped.
 */
#ifndef SEGFS_COMMON_PROTO_H
#define SEGFS_COMMON_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROTO_EXIT_REFUSE 65
#define PROTO_EXIT_USAGE 66

enum proto_type {
	/* server -> supervisor */
	P_KEEP = 1,      /* fd: hold it for good; a: PROTO_KEEP_DATA or PROTO_KEEP_STATE */
	P_PIN,           /* fd: hold it as descriptor number a (dup3 there) */
	P_UNPIN,         /* close pinned descriptor number a */
	P_SYNC_BEGIN,    /* the pins a restarted server knows follow ... */
	P_SYNC_LIVE,     /* ... a list of uint64_t numbers as text ... */
	P_SYNC_END,      /* ... and every other pin is closed */
	P_FRAGILE,       /* text: why a crash of this server is the end (io_uring, memfds) */
	P_RESENT,        /* text: a request the dead server had taken, sent again */
	P_READY,         /* text: one line for the log; serving */
	P_COMPATIBLE,    /* "check": this server can take over */
	P_FATAL,         /* text: why it cannot; it exits PROTO_EXIT_REFUSE */
	P_STOPPED,       /* handed over: no request is being served; it exits 0 */
	P_ASK,           /* a: how many P_PINs were sent before this; answer P_PINNED a */
	/* supervisor -> server */
	P_HANDOVER = 64, /* stop taking requests, finish those taken, P_STOPPED, exit 0 */
	P_GO,            /* "check": take over now */
	/*
	 * Every pin of the first a P_PINs is held at its number (the answer
	 * to P_ASK).  Pins are not answered one by one: a server asks only
	 * before it closes its own descriptor of a file (a second message
	 * and a wakeup for every segment made would cost the lifecycle of
	 * one a tenth more).
	 */
	P_PINNED,
};

#define PROTO_KEEP_DATA 1
#define PROTO_KEEP_STATE 2

/* The text a message may carry. */
#define PROTO_TEXT_MAX 4000

struct proto_msg {
	uint32_t type;
	uint32_t len;        /* bytes of text */
	uint64_t a;
	char text[PROTO_TEXT_MAX];
};

/*
 * Sends one message (`text` may be NULL), with descriptor `fd` if it is
 * not -1.  0 or -errno; EINTR is retried.
 */
int proto_send(int sock, enum proto_type type, uint64_t a, const void *text, size_t len,
	       int fd);

/*
 * Receives one message into *m, and its descriptor into *fd (-1: none;
 * received close-on-exec).  0, -ECONNRESET at the peer's end, or -errno
 * (-EAGAIN with MSG_DONTWAIT in `flags` when none is there).
 */
int proto_recv(int sock, struct proto_msg *m, int *fd, int flags);

/* Room for one descriptor's SCM_RIGHTS, aligned as a cmsghdr. */
union proto_cmsg {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* Attaches descriptor `fd` to `mh` as SCM_RIGHTS, in `c`. */
void proto_put_fd(struct msghdr *mh, union proto_cmsg *c, int fd);

/* The environment's SEGFS_FDS entry `name`, or -1. */
int proto_env_fd(const char *name);

#endif
