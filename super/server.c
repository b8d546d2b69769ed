/*
 * Running a server (segfs-server) and hearing what it says.  See
 * common/proto.h for the contract.
 */
#include "super/super.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int server_path(char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	/* A build tree runs the server beside it; an installed segfs its own. */
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(buf, size, "%s/segfs-server", self) < size &&
			    access(buf, X_OK) == 0)
				return 0;
		}
	}
	if ((size_t)snprintf(buf, size, "%s/segfs-server", SEGFS_LIBEXECDIR) >= size)
		return -ENAMETOOLONG;
	return access(buf, X_OK) == 0 ? 0 : -errno;
}

int server_start(struct super *s, struct server *srv, const char *path, const char *takeover,
		 char **argv)
{
	char fds[128], pins[64], prog[sizeof(srv->path)];
	int sv[2];
	pid_t pid;

	/* `path` may be srv->path itself: the dead server's program, run again. */
	snprintf(prog, sizeof(prog), "%s", path);
	memset(srv, 0, sizeof(*srv));
	srv->pid = -1;
	srv->pidfd = -1;
	srv->ctl = -1;
	memcpy(srv->path, prog, sizeof(prog));
	path = srv->path;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		/* The child: what it inherits is what SEGFS_FDS says. */
		int keep[] = { s->fuse, sv[1], s->data, s->state };

		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			if (keep[i] >= 0)
				fcntl(keep[i], F_SETFD, 0);
		snprintf(fds, sizeof(fds), "fuse=%d,ctl=%d", s->fuse, sv[1]);
		if (s->data >= 0)
			snprintf(fds + strlen(fds), sizeof(fds) - strlen(fds), ",data=%d", s->data);
		if (s->state >= 0)
			snprintf(fds + strlen(fds), sizeof(fds) - strlen(fds), ",state=%d", s->state);
		snprintf(pins, sizeof(pins), "%d:%d:%d", (int)getppid(), s->pin_base, s->pin_limit);
		setenv("SEGFS_FDS", fds, 1);
		setenv("SEGFS_PINS", pins, 1);
		setenv("SEGFS_MOUNTPOINT", s->o->mountpoint, 1);
		if (takeover != NULL)
			setenv("SEGFS_TAKEOVER", takeover, 1);
		else
			unsetenv("SEGFS_TAKEOVER");
		if (s->syslog)
			setenv("SEGFS_SYSLOG", "1", 1);
		/* If we die, it dies: nothing it holds outlives us. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		argv[0] = (char *)path;
		execv(path, argv);
		fprintf(stderr, "segfs: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	srv->pid = pid;
	srv->ctl = sv[0];
	srv->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return srv->pidfd < 0 ? -errno : 0;
}

/* Handles one message of srv's: 0, or -errno from proto_recv. */
static int hear_one(struct super *s, struct server *srv)
{
	struct proto_msg m;
	int fd, rc = proto_recv(srv->ctl, &m, &fd, MSG_DONTWAIT);

	if (rc < 0)
		return rc;
	m.text[m.len < PROTO_TEXT_MAX ? m.len : PROTO_TEXT_MAX - 1] = '\0';
	switch (m.type) {
	case P_KEEP:
		if (fd >= 0 && m.a == PROTO_KEEP_DATA && s->data < 0) {
			s->data = fd;
			fd = -1;
			if (s->fdstore)
				fdstore_keep("data", s->data);
		} else if (fd >= 0 && m.a == PROTO_KEEP_STATE && s->state < 0) {
			s->state = fd;
			fd = -1;
			if (s->fdstore)
				fdstore_keep("state", s->state);
		}
		break;
	case P_PIN:
		if (fd >= 0) {
			pins_hold(s, (int)m.a, fd);
			fd = -1;
		}
		break;
	case P_ASK:
		/* Messages are handled in order: every earlier P_PIN is held. */
		proto_send(srv->ctl, P_PINNED, m.a, NULL, 0, -1);
		break;
	case P_UNPIN:
		pins_drop(s, (int)m.a);
		break;
	case P_SYNC_BEGIN:
		pins_sync_begin(s);
		break;
	case P_SYNC_LIVE:
		pins_sync_live(s, (const uint64_t *)m.text, m.len / sizeof(uint64_t));
		break;
	case P_SYNC_END:
		pins_sync_end(s);
		break;
	case P_FRAGILE:
		s->fragile = true;
		snprintf(s->fragile_why, sizeof(s->fragile_why), "%.255s", m.text);
		break;
	case P_RESENT:
		if (s->nresent < 4)
			snprintf(s->resent[s->nresent++], sizeof(s->resent[0]), "%.199s", m.text);
		break;
	case P_READY:
		/* The server has logged its line itself. */
		srv->ready = true;
		/* Type=notify: the mount is serving (ENOTCONN when not under systemd). */
		if (!s->ready_told)
			s->ready_told = sd_notify_fd("READY=1", -1) == 0;
		break;
	case P_COMPATIBLE:
		srv->compatible = true;
		break;
	case P_FATAL:
		snprintf(srv->fatal, sizeof(srv->fatal), "%s", m.text);
		break;
	case P_STOPPED:
		srv->stopped = true;
		break;
	default:
		break;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

int server_hear(struct super *s, struct server *srv)
{
	int n = 0, rc;

	while ((rc = hear_one(s, srv)) == 0)
		n++;
	return rc == -EAGAIN ? n : rc;
}

void server_drain(struct super *s, struct server *srv)
{
	if (srv->ctl < 0)
		return;
	/* A dead server's socket holds what it sent: every pin is taken. */
	while (server_hear(s, srv) > 0)
		;
	close(srv->ctl);
	srv->ctl = -1;
}

int server_reap(struct server *srv)
{
	int status = 0;

	while (waitpid(srv->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (srv->pidfd >= 0)
		close(srv->pidfd);
	srv->pidfd = -1;
	srv->pid = -1;
	return status;
}

void server_kill(struct server *srv, int sig)
{
	if (srv->pid > 0)
		kill(srv->pid, sig);
}
