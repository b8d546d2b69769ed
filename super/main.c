/*
 * segfs: the supervisor.  It checks the command line, mounts, detaches
 * (unless -f), and runs the server (segfs-server) on the connection; then
 * it watches:
 *
 *   - the server's socket: what to hold for it (common/proto.h);
 *   - the server's death: a crash is followed by a new server that takes
 *     the connection over and finishes what the dead one had taken;
 *     N deaths within SECONDS (-o crash_loop=N/SECONDS, 5/30 by default)
 *     end it: one line names the request it died of, and the mount is
 *     released.  So does any death of a server that cannot be followed
 *     (P_FRAGILE: -o io_uring, or no state tmpfs);
 *   - SIGTERM, SIGINT, SIGHUP: the server is stopped, the mount unmounted,
 *     and everything released (exit 0);
 *   - the end of the connection (unmount): the server exits 0, and so do
 *     we;
 *   - `segfs --upgrade` (super/control.c): a new server checks that it
 *     can read what the running one keeps; only then is the running one
 *     asked to hand over (it answers what it took, and exits), and the
 *     new one takes over.  One that cannot is refused, and the running
 *     one never stopped.
 *
 * Whatever it holds is held by descriptors only, so that when it dies
 * (any way, SIGKILL included) the kernel frees every segment no client
 * maps, and the server, told by PR_SET_PDEATHSIG, goes too.
 */
#include "super/super.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_log.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* How long a server has to go once told, before SIGKILL. */
#define STOP_SECONDS 10
/* How long the server's messages may wait while they keep coming (below). */
#define QUIET_MS 10

static bool logging_to_syslog;

void say(struct super *s, const char *fmt, ...)
{
	va_list ap;

	(void)s;
	va_start(ap, fmt);
	if (logging_to_syslog) {
		vsyslog(LOG_NOTICE, fmt, ap);
	} else {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int check_mountpoint(const char *mnt)
{
	struct stat st;
	unsigned maj, min;

	/*
	 * A segfs whose every process is gone leaves its mount behind, dead
	 * (ENOTCONN): one systemd gave up restarting, say.  It is unmounted,
	 * and the new segfs mounts on the directory beneath.
	 */
	if (stat(mnt, &st) < 0 && errno == ENOTCONN && mountinfo_segfs(mnt, &maj, &min) == 0 &&
	    umount2(mnt, MNT_DETACH) == 0)
		fprintf(stderr, "segfs: unmounted the dead segfs on %s\n", mnt);
	if (stat(mnt, &st) < 0) {
		fprintf(stderr, "segfs: mount point %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "segfs: mount point %s is not a directory\n", mnt);
		return -1;
	}
	return 0;
}

static int check_fuse_device(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "segfs: cannot use /dev/fuse: %s\n", strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static void log_to_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

/* ---- the servers --------------------------------------------------------- */

/* Waits for a server told to go, with SIGKILL after STOP_SECONDS. */
static int stop_server(struct super *s, struct server *srv, int sig)
{
	struct pollfd p = { .fd = srv->pidfd, .events = POLLIN };
	double until = now_s() + STOP_SECONDS;

	if (srv->pid < 0)
		return 0;
	server_kill(srv, sig);
	while (poll(&p, 1, 100) == 0 || (p.revents & POLLIN) == 0) {
		if (now_s() > until) {
			server_kill(srv, SIGKILL);
			break;
		}
	}
	server_drain(s, srv);
	return server_reap(srv);
}

/* Whether the deaths so far make a crash loop, counting one more now. */
static bool crash_loop(struct super *s)
{
	double t = now_s();
	int n = 0;

	if (s->ndeaths == (int)(sizeof(s->deaths) / sizeof(s->deaths[0])))
		s->ndeaths = 0;
	s->deaths[s->ndeaths++] = t;
	for (int i = 0; i < s->ndeaths; i++)
		n += t - s->deaths[i] <= s->o->crash_window;
	return n >= s->o->crash_deaths;
}

static void describe(char *buf, size_t size, int status)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
}

/* ---- upgrades ------------------------------------------------------------ */

enum upgrade_state { UP_IDLE, UP_CHECKING, UP_HANDING, UP_TAKING };

struct upgrade {
	enum upgrade_state state;
	int client;
	double t0;
	pid_t old_pid;
};

/* Tells the `segfs --upgrade` client how it ended ("upgraded", "refused", "failed"). */
static void upgrade_end(struct upgrade *u, const char *verdict, const char *detail)
{
	if (u->client >= 0) {
		control_say(u->client, "%s: %s", verdict, detail);
		close(u->client);
	}
	u->client = -1;
	u->state = UP_IDLE;
}

/* ---- main ---------------------------------------------------------------- */

/*
 * The segments named in the private tmpfs (pins that did not fit, or all
 * of them with -o fdstore): unnamed now, so that a client's mapping of one
 * segment keeps that one alive, not all of them.  No server runs.
 */
static void unname_segments(struct super *s)
{
	int fd = s->data >= 0 ? openat(s->data, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_REG)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/*
 * The end: everything is released.  `se` is the session that mounted, or
 * NULL for a connection systemd kept (-o fdstore), unmounted here.
 */
static int release(struct super *s, struct fuse_session *se, int status)
{
	unname_segments(s);
	if (se != NULL) {
		fuse_session_unmount(se);
		fuse_session_destroy(se);
	} else if (umount2(s->o->mountpoint, MNT_DETACH) < 0) {
		say(s, "segfs: unmounting %s: %s", s->o->mountpoint, strerror(errno));
	}
	/* A segfs started again must not be handed a connection that ended. */
	if (s->fdstore) {
		fdstore_forget("fuse");
		fdstore_forget("data");
		fdstore_forget("state");
	}
	/* Our descriptors go with us: the tmpfses, the pins, the segments. */
	return status;
}

/*
 * Reads what the current server said.  Its end of the socket gone: no more
 * reading (its death is seen on its pidfd).  Something read: the next
 * read waits QUIET_MS, so that messages come in batches.
 */
static void hear_current(struct super *s, double *quiet_until)
{
	int rc = server_hear(s, &s->cur);

	if (rc < 0) {
		close(s->cur.ctl);
		s->cur.ctl = -1;
	} else if (rc > 0) {
		*quiet_until = now_s() + QUIET_MS / 1e3;
	}
}

/*
 * Mounts, runs the first server, and watches until the end: the exit
 * status of segfs.
 */
static int supervise(struct super *s, const char *path, char **argv)
{
	static const struct fuse_lowlevel_ops no_ops;
	struct upgrade up = { .state = UP_IDLE, .client = -1 };
	struct fuse_session *se;
	char what[200];
	sigset_t sigs;
	double quiet_until = 0;
	const char *takeover = NULL;
	int sfd, listen_fd, status, rc;

	if (s->fuse >= 0) {
		/* systemd kept the connection of a segfs that died (-o fdstore). */
		se = NULL;
		takeover = "restart";
		say(s, "segfs: taking %s over from systemd's descriptor store", s->o->mountpoint);
	} else {
		se = fuse_session_new(&s->o->fuse, &no_ops, sizeof(no_ops), NULL);
		if (se == NULL)
			return 1;
		if (fuse_session_mount(se, s->o->mountpoint) != 0) {
			fuse_session_destroy(se);
			return 1;
		}
		s->fuse = fuse_session_fd(se);
		if (s->fdstore && fdstore_keep("fuse", s->fuse) < 0)
			say(s, "segfs: -o fdstore: systemd did not take the connection");
	}
	if (fuse_daemonize(s->o->foreground) != 0)
		return release(s, se, 1);
	if (!s->o->foreground) {
		/* stderr is /dev/null now: what we say goes to syslog, the server's too. */
		openlog("segfs", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(log_to_syslog);
		logging_to_syslog = s->syslog = true;
	}
	/* Taken here only: the servers, forked with them blocked, unblock theirs. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	listen_fd = control_listen(s->o->mountpoint);
	if (listen_fd < 0)
		say(s, "segfs: no upgrades for %s: %s", s->o->mountpoint, strerror(-listen_fd));
	rc = server_start(s, &s->cur, path, takeover, argv);
	if (rc < 0 || sfd < 0) {
		say(s, "segfs: cannot start %s: %s", path, strerror(rc < 0 ? -rc : errno));
		return release(s, se, 1);
	}

	for (;;) {
		/*
		 * The server's messages are read at most every QUIET_MS while
		 * they keep coming: a segment made and removed is a P_PIN and
		 * a P_UNPIN, and waking for each cost the lifecycle of a segment
		 * a quarter more on a 2-CPU guest.  They wait in the socket
		 * meanwhile (sent is safe: a dead server's are read all the
		 * same, server_drain), and the first after a quiet spell is
		 * read at once.
		 */
		double wait = quiet_until - now_s();
		bool quiet = wait > 0;
		struct pollfd p[6] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = quiet ? -1 : s->cur.ctl, .events = POLLIN },
			{ .fd = s->cur.pidfd, .events = POLLIN },
			{ .fd = listen_fd, .events = POLLIN },
			{ .fd = up.state != UP_IDLE ? s->next.ctl : -1, .events = POLLIN },
			{ .fd = up.state != UP_IDLE ? s->next.pidfd : -1, .events = POLLIN },
		};

		if (poll(p, 6, quiet ? (int)(wait * 1e3) + 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/*
		 * Whatever else happened (a signal, an upgrade asked for, the
		 * server's death) is judged on all the server said before it.
		 */
		if (quiet && s->cur.ctl >= 0)
			hear_current(s, &quiet_until);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				/* The end: stopped, unmounted, released. */
				if (up.state != UP_IDLE) {
					stop_server(s, &s->next, SIGKILL);
					upgrade_end(&up, "failed", "segfs is stopping");
				}
				stop_server(s, &s->cur, SIGTERM);
				return release(s, se, 0);
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP))
			hear_current(s, &quiet_until);
		if (p[4].revents & (POLLIN | POLLHUP)) {
			if (server_hear(s, &s->next) < 0) {
				close(s->next.ctl);
				s->next.ctl = -1;
			}
			if (up.state == UP_CHECKING && s->next.compatible) {
				/* It can: the running one hands over now. */
				up.state = UP_HANDING;
				up.old_pid = s->cur.pid;
				proto_send(s->cur.ctl, P_HANDOVER, 0, NULL, 0, -1);
			}
			if (up.state == UP_TAKING && s->next.ready) {
				char line[4400];

				snprintf(line, sizeof(line), "server %d (%s) replaced server %d in "
					 "%.1f ms", (int)s->next.pid, s->next.path, (int)up.old_pid,
					 (now_s() - up.t0) * 1e3);
				s->cur = s->next;
				s->next.pid = -1;
				s->next.ctl = s->next.pidfd = -1;
				upgrade_end(&up, "upgraded", line);
				say(s, "segfs: %s", line);
			}
		}
		if (p[5].revents & POLLIN) {
			/* The new server died before it served. */
			server_drain(s, &s->next);
			status = server_reap(&s->next);
			describe(what, sizeof(what), status);
			if (up.state == UP_CHECKING) {
				upgrade_end(&up, "refused", s->next.fatal[0] != '\0' ? s->next.fatal
					    : what);
			} else if (up.state == UP_TAKING) {
				/* Too late to refuse: the old program takes over again. */
				say(s, "segfs: the new server died taking over (%s); restarting %s",
				    what, s->cur.path);
				upgrade_end(&up, "failed: the new server died", what);
				rc = server_start(s, &s->cur, s->cur.path, "restart", argv);
				if (rc < 0)
					return release(s, se, 1);
			}
		}
		if (p[3].revents & POLLIN) {
			char npath[4096];
			int client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (client < 0)
				continue;
			rc = control_read(client, npath, sizeof(npath));
			if (rc < 0 || up.state != UP_IDLE || s->fragile) {
				control_say(client, "refused: %s", rc < 0 ? strerror(-rc)
					    : s->fragile ? s->fragile_why : "an upgrade is under way");
				close(client);
				continue;
			}
			up.client = client;
			up.t0 = now_s();
			rc = server_start(s, &s->next, npath, "check", argv);
			if (rc < 0) {
				upgrade_end(&up, "refused", strerror(-rc));
				continue;
			}
			up.state = UP_CHECKING;
			control_say(client, "checking %s (server %d)", npath, (int)s->next.pid);
		}
		if (!(p[2].revents & POLLIN))
			continue;

		/* The serving server is gone. */
		server_drain(s, &s->cur);
		status = server_reap(&s->cur);
		if (up.state == UP_HANDING && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		    s->cur.stopped) {
			/* Handed over: every pin it made is held, the new one goes on. */
			up.state = UP_TAKING;
			proto_send(s->next.ctl, P_GO, 0, NULL, 0, -1);
			continue;
		}
		if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
					  WEXITSTATUS(status) == PROTO_EXIT_USAGE)) {
			/* Unmounted (or never started): nothing left to serve. */
			if (up.state != UP_IDLE) {
				stop_server(s, &s->next, SIGKILL);
				upgrade_end(&up, "failed", "the mount went away");
			}
			return release(s, se, WEXITSTATUS(status) == 0 ? 0 : 1);
		}
		describe(what, sizeof(what), status);
		if (s->fragile || s->state < 0 ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == PROTO_EXIT_REFUSE)) {
			say(s, "segfs: the server died (%s), and cannot be followed: %s; "
			    "releasing %s", what, s->fragile ? s->fragile_why : s->cur.fatal[0] ?
			    s->cur.fatal : "nothing was kept", s->o->mountpoint);
			if (up.state != UP_IDLE)
				stop_server(s, &s->next, SIGKILL);
			return release(s, se, 1);
		}
		if (crash_loop(s)) {
			say(s, "segfs: crash loop: the server died %d times within %g s, last "
			    "%s, serving %s; releasing %s", s->o->crash_deaths, s->o->crash_window, what,
			    s->nresent > 0 ? s->resent[0] : "no request (it died between them)",
			    s->o->mountpoint);
			if (up.state != UP_IDLE)
				stop_server(s, &s->next, SIGKILL);
			return release(s, se, 1);
		}
		if (up.state != UP_IDLE) {
			/* The old one crashed mid-upgrade: the new one takes over now. */
			if (up.state == UP_CHECKING && s->next.compatible)
				up.state = UP_HANDING;
			if (up.state == UP_HANDING) {
				up.state = UP_TAKING;
				proto_send(s->next.ctl, P_GO, 0, NULL, 0, -1);
				continue;
			}
			stop_server(s, &s->next, SIGKILL);
			upgrade_end(&up, "failed", "the running server died");
		}
		s->nresent = 0;
		say(s, "segfs: the server died (%s); starting another, which takes over", what);
		rc = server_start(s, &s->cur, s->cur.path[0] ? s->cur.path : path, "restart", argv);
		if (rc < 0) {
			say(s, "segfs: cannot start a server: %s; releasing %s", strerror(-rc),
			    s->o->mountpoint);
			return release(s, se, 1);
		}
	}
	return release(s, se, 1);
}

int main(int argc, char **argv)
{
	struct segfs_opts o;
	struct super s = { .o = &o, .fuse = -1, .data = -1, .state = -1 };
	char path[4096];
	int rc, ret = 1;

	if (argc > 1 && strcmp(argv[1], "--upgrade") == 0)
		return control_upgrade(argc, argv);
	if (remount_asked(argc, argv))
		return control_remount(argc, argv);
	if (opts_parse(argc, argv, &o, NULL) < 0)
		return 1;
	if (o.show_help) {
		opts_help(argv[0]);
		printf("\n       %s --upgrade [--server=PATH] MOUNTPOINT\n"
		       "         has the segfs of MOUNTPOINT run the server program PATH\n"
		       "         (default: the installed one) without losing anything\n",
		       argv[0]);
		ret = 0;
		goto out;
	}
	if (o.show_version) {
		/* The server says its versions and libfuse's; the supervisor is as old as it. */
		printf("segfs %s\n", SEGFS_VERSION);
		fflush(stdout);
		if (server_path(path, sizeof(path)) == 0)
			execl(path, path, "--version", (char *)NULL);
		ret = 0;
		goto out;
	}
	if (o.fdstore) {
		/*
		 * What a segfs that died left with systemd: all three, or none
		 * (a first start, or what a clean end removed).
		 */
		s.fdstore = true;
		if (getenv("NOTIFY_SOCKET") == NULL) {
			fprintf(stderr, "segfs: -o fdstore needs systemd's descriptor store "
				"(NOTIFY_SOCKET, FileDescriptorStoreMax=)\n");
			goto out;
		}
		s.fuse = fdstore_take("fuse");
		s.data = fdstore_take("data");
		s.state = fdstore_take("state");
		if (s.fuse < 0 || s.data < 0 || s.state < 0) {
			int kept[] = { s.fuse, s.data, s.state };

			for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
				if (kept[i] >= 0)
					close(kept[i]);
			s.fuse = s.data = s.state = -1;
		}
	}
	fdstore_done();
	/* Not a stat of a mount systemd kept: its server is the one to start. */
	if ((s.fuse < 0 && check_mountpoint(o.mountpoint) < 0) || check_fuse_device() < 0)
		goto out;
	rc = server_path(path, sizeof(path));
	if (rc < 0) {
		fprintf(stderr, "segfs: no segfs-server beside segfs or in %s: %s\n",
			SEGFS_LIBEXECDIR, strerror(-rc));
		goto out;
	}
	if (pins_init(&s) == 0)
		ret = supervise(&s, path, argv);
out:
	free(s.pinned);
	free(s.live);
	opts_free(&o);
	return ret;
}
