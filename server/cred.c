/*
 * What a request's header does not say about its caller: its supplementary
 * groups and its capabilities.  They come from /proc/PID/status (the
 * kernel gives the caller's thread id in our pid namespace), which costs
 * a file read, so they are asked for only on paths that need them and
 * are rare: listing trusted.* attributes, setting an ACL on a setgid
 * file, and dropping setuid or setgid (server/inode.c) from a file that has
 * them.
 */
#include "server/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the Groups: line's list (after the colon) holds gid. */
static bool groups_hold(const char *p, gid_t gid)
{
	for (;;) {
		char *end;
		unsigned long g = strtoul(p, &end, 10);

		if (end == p)
			return false;
		if ((gid_t)g == gid)
			return true;
		p = end;
	}
}

int caller_query(fuse_req_t req, gid_t gid, struct caller *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[64], *line = NULL;
	size_t cap = 0;
	int found = 0, rc = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->in_group = ctx->gid == gid;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)ctx->pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	/* getline: a Groups: line may be long (up to 65536 groups). */
	while (found < 2 && getline(&line, &cap, f) > 0) {
		unsigned long long eff;

		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			c->cap_eff = eff;
			found++;
		} else if (strncmp(line, "Groups:", 7) == 0) {
			c->in_group |= groups_hold(line + 7, gid);
			found++;
		}
	}
	if (found < 2)
		rc = ferror(f) ? -EIO : -ENOENT;
	free(line);
	fclose(f);
	return rc;
}

bool caller_capable(const struct caller *c, int cap)
{
	return cap >= 0 && cap < 64 && (c->cap_eff >> cap) & 1;
}
