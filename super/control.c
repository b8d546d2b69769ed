/*
 * `segfs --upgrade [--server=PATH] MOUNTPOINT`, and the socket it talks
 * to: an abstract unix socket named after the mount's device number
 * ("segfs/MAJOR:MINOR"), which the supervisor of that mount listens on.
 * Only root, or the user the supervisor runs as, is heard (SO_PEERCRED).
 *
 * The command sends one line, "UPGRADE PATH"; the supervisor answers with
 * lines as the upgrade goes, the last starting with "upgraded" or
 * "refused" (or "failed"), and closes.
 */
#include "super/super.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The socket's address for the segfs on `mountpoint` (absolute). */
static int address(const char *mountpoint, struct sockaddr_un *a, socklen_t *len)
{
	unsigned maj, min;
	int n, rc = mountinfo_segfs(mountpoint, &maj, &min);

	if (rc < 0)
		return rc;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Abstract: sun_path[0] is NUL, and nothing is left on a disk. */
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "segfs/%u:%u", maj, min);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	return 0;
}

int control_listen(const char *mountpoint)
{
	struct sockaddr_un a;
	socklen_t len;
	int fd, rc = address(mountpoint, &a, &len);

	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 4) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int control_read(int client, char *path, size_t size)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char line[4200];
	size_t got = 0;
	char *nl;

	if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		return -errno;
	if (cred.uid != 0 && cred.uid != getuid())
		return -EPERM;
	while (got < sizeof(line) - 1 && (nl = memchr(line, '\n', got)) == NULL) {
		ssize_t n = read(client, line + got, sizeof(line) - 1 - got);

		if (n <= 0)
			return n < 0 ? -errno : -EPROTO;
		got += (size_t)n;
	}
	line[got] = '\0';
	nl = strchr(line, '\n');
	if (nl == NULL || strncmp(line, "UPGRADE ", 8) != 0)
		return -EPROTO;
	*nl = '\0';
	if ((size_t)snprintf(path, size, "%s", line + 8) >= size)
		return -ENAMETOOLONG;
	return 0;
}

void control_say(int client, const char *fmt, ...)
{
	char buf[PROTO_TEXT_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* A client that went away loses the line, nothing more. */
	if (send(client, buf, (size_t)n, MSG_NOSIGNAL) < 0)
		return;
}

int control_upgrade(int argc, char **argv)
{
	const char *server = NULL, *mnt = NULL;
	char path[4096], line[sizeof(path) + 64], *abs;
	struct sockaddr_un a;
	socklen_t len;
	size_t got = 0;
	int fd, rc, status = 1;

	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--server=", 9) == 0)
			server = argv[i] + 9;
		else if (mnt == NULL)
			mnt = argv[i];
	}
	if (mnt == NULL) {
		fprintf(stderr, "usage: segfs --upgrade [--server=PATH] MOUNTPOINT\n");
		return 2;
	}
	if (server == NULL ? server_path(path, sizeof(path)) < 0
			   : (abs = realpath(server, NULL)) == NULL) {
		fprintf(stderr, "segfs: no server program %s: %s\n",
			server != NULL ? server : "(segfs-server)", strerror(errno));
		return 1;
	}
	if (server != NULL) {
		snprintf(path, sizeof(path), "%s", abs);
		free(abs);
	}
	abs = realpath(mnt, NULL);
	rc = abs == NULL ? -errno : address(abs, &a, &len);
	free(abs);
	fd = rc < 0 ? rc : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, len) < 0) {
		fprintf(stderr, "segfs: %s: no segfs supervisor to upgrade there: %s\n", mnt,
			strerror(fd < 0 ? -fd : errno));
		return 1;
	}
	snprintf(line, sizeof(line), "UPGRADE %s\n", path);
	if (write(fd, line, strlen(line)) < 0) {
		fprintf(stderr, "segfs: %s: %s\n", mnt, strerror(errno));
		close(fd);
		return 1;
	}
	/* Its lines, as they come; the last says how it went. */
	for (;;) {
		ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);
		char *nl;

		if (n <= 0)
			break;
		got += (size_t)n;
		line[got] = '\0';
		while ((nl = strchr(line, '\n')) != NULL) {
			size_t used = (size_t)(nl + 1 - line);

			*nl = '\0';
			printf("%s\n", line);
			if (strncmp(line, "upgraded", 8) == 0)
				status = 0;
			memmove(line, nl + 1, got - used + 1);
			got -= used;
		}
	}
	close(fd);
	return status;
}
