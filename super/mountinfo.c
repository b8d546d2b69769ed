/*
 * Finding a mount of segfs in /proc/self/mountinfo.  Not stat(): the
 * supervisor must never wait on its own mount, whose server may be the one
 * it is about to start, and a mount whose server is gone answers no stat.
 */
#include "super/super.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mountinfo's escapes (\040 for a space, ...) undone in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

int mountinfo_segfs(const char *mountpoint, unsigned *maj, unsigned *min)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mnt[4096], fstype[256];
		unsigned a, b;
		char *dash = strstr(line, " - ");

		if (dash == NULL || sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, mnt) != 3 ||
		    sscanf(dash + 3, "%255s", fstype) != 1)
			continue;
		unescape(mnt);
		if (strcmp(mnt, mountpoint) == 0 && strcmp(fstype, "fuse.segfs") == 0) {
			*maj = a;
			*min = b;
			rc = 0;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

