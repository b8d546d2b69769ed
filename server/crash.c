/*
 * The tests' debug hook: SEGFS_CRASH="OP:commit[!][:N]" makes the server
 * abort the N-th time (default 1) a request of OP ("create", "mknod",
 * "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "setattr",
 * "open", "lists-write") reaches the point after it took effect and
 * before its answer (the crash_point calls in the handlers).  Only the
 * first server of a mount obeys it, so that the one that takes over
 * finishes the request; with "!" every server does, and finishing a
 * request a dead server had made passes the point again: a crash loop.
 * Nothing reads it unless the tests set it.
 */
#include "server/request.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char point_name[32];
static long point_nth;
static atomic_long point_seen;

void crash_init(bool first_server)
{
	const char *s = getenv("SEGFS_CRASH");
	const char *at, *rest;
	bool always;
	size_t len;

	if (s == NULL || (at = strstr(s, ":commit")) == NULL)
		return;
	len = (size_t)(at - s);
	rest = at + strlen(":commit");
	always = *rest == '!';
	if (always)
		rest++;
	if ((!first_server && !always) || len == 0 || len >= sizeof(point_name))
		return;
	memcpy(point_name, s, len);
	point_name[len] = '\0';
	point_nth = *rest == ':' ? strtol(rest + 1, NULL, 10) : 1;
	if (point_nth < 1)
		point_nth = 1;
}

void crash_point(const char *point)
{
	if (point_name[0] == '\0' || strcmp(point, point_name) != 0)
		return;
	if (atomic_fetch_add(&point_seen, 1) + 1 != point_nth)
		return;
	fprintf(stderr, "segfs-server: SEGFS_CRASH: aborting at %s\n", point);
	abort();
}
