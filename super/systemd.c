/*
 * systemd's side of segfs (-o fdstore): the notification socket and the
 * descriptor store (sd_notify(3), sd_listen_fds(3), systemd.service(5):
 * FileDescriptorStoreMax=), spoken directly: the protocol is a datagram
 * of "KEY=VALUE" lines, with descriptors as SCM_RIGHTS, and no library is
 * needed for it.
 *
 * What segfs stores: the /dev/fuse connection ("fuse"), the private tmpfs
 * of the segments ("data") and the state tmpfs ("state").  Segments are
 * named in the private tmpfs then, not pinned (super/pins.c), so that
 * those three are all a new supervisor needs: when segfs itself dies, or
 * is restarted (Restart=, systemctl restart with a new binary), systemd
 * hands them to the next one, which runs a server that takes the
 * connection over as after a server's crash.  When the service stops,
 * systemd closes what it kept.
 */
#include "super/super.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* sd_listen_fds(3): passed descriptors start here. */
#define LISTEN_FDS_START 3

int sd_notify_fd(const char *state, int fd)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	union proto_cmsg c;
	struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
	struct msghdr mh = { .msg_name = &a, .msg_iov = &iov, .msg_iovlen = 1 };
	size_t len;
	int sock, rc = 0;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return -ENOTCONN;
	len = strlen(path);
	if (len >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, len);
	/* "@": an abstract address, whose first byte is NUL. */
	if (path[0] == '@')
		a.sun_path[0] = '\0';
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (fd >= 0)
		proto_put_fd(&mh, &c, fd);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		rc = -errno;
	close(sock);
	return rc;
}

int fdstore_keep(const char *name, int fd)
{
	char state[64];

	snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", name);
	return sd_notify_fd(state, fd);
}

void fdstore_forget(const char *name)
{
	char state[64];

	snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	sd_notify_fd(state, -1);
}

int fdstore_take(const char *name)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	size_t len = strlen(name);
	int count, k = 0;

	/* Ours only: a child of ours must not take what was passed to us. */
	if (pid == NULL || n == NULL || names == NULL || atoi(pid) != (int)getpid())
		return -1;
	count = atoi(n);
	for (const char *p = names; k < count && *p != '\0'; k++) {
		const char *end = strchr(p, ':');
		size_t l = end != NULL ? (size_t)(end - p) : strlen(p);

		if (l == len && strncmp(p, name, len) == 0) {
			int fd = LISTEN_FDS_START + k;

			fcntl(fd, F_SETFD, FD_CLOEXEC);
			return fd;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return -1;
}

void fdstore_done(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	int count = n != NULL && pid != NULL && atoi(pid) == (int)getpid() ? atoi(n) : 0;

	/* What was passed and not taken is closed; none of it goes to a server. */
	for (int fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + count; fd++)
		if (fcntl(fd, F_GETFD) >= 0 && !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			close(fd);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}
