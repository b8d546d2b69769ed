/*
 * The messages between the supervisor and the server.  See proto.h.
 */
#include "common/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void proto_put_fd(struct msghdr *mh, union proto_cmsg *c, int fd)
{
	struct cmsghdr *cm;

	memset(c, 0, sizeof(*c));
	mh->msg_control = c->buf;
	mh->msg_controllen = sizeof(c->buf);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

int proto_send(int sock, enum proto_type type, uint64_t a, const void *text, size_t len,
	       int fd)
{
	struct proto_msg m = { .type = type, .a = a };
	union proto_cmsg c;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (len > PROTO_TEXT_MAX)
		return -EMSGSIZE;
	m.len = (uint32_t)len;
	if (len > 0)
		memcpy(m.text, text, len);
	iov.iov_base = &m;
	iov.iov_len = offsetof(struct proto_msg, text) + len;
	if (fd >= 0)
		proto_put_fd(&mh, &c, fd);
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

int proto_recv(int sock, struct proto_msg *m, int *fd, int flags)
{
	union proto_cmsg c;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	if ((size_t)n < offsetof(struct proto_msg, text) ||
	    (size_t)n != offsetof(struct proto_msg, text) + m->len ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EBADMSG;
	}
	return 0;
}

int proto_env_fd(const char *name)
{
	const char *s = getenv("SEGFS_FDS");
	size_t len = strlen(name);

	while (s != NULL && *s != '\0') {
		if (strncmp(s, name, len) == 0 && s[len] == '=') {
			char *end;
			long v = strtol(s + len + 1, &end, 10);

			return (*end == ',' || *end == '\0') && v >= 0 && v < 1 << 30 ? (int)v : -1;
		}
		s = strchr(s, ',');
		if (s != NULL)
			s++;
	}
	return -1;
}
