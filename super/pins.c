/*
 * The pins: a descriptor of every segment's file, held at a number the
 * server chose (common/proto.h: P_PIN), so that the file outlives the
 * server and the server can open it again (/proc/PID/fd/N).  They are the
 * supervisor's descriptors: when it dies they close, and every segment
 * no client maps is freed with them.
 */
#include "super/super.h"

#include "common/fdlimit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * As many descriptors as allowed: to fs.nr_open with CAP_SYS_RESOURCE,
 * else to the hard limit.  Pins take the numbers from a quarter of that
 * (at most 1024) up: below, the supervisor's own.
 */
int pins_init(struct super *s)
{
	uint64_t limit = fdlimit_raise();

	if (limit > (1U << 30))
		limit = 1U << 30;
	s->pin_limit = (int)limit;
	s->pin_base = s->pin_limit / 4 < 1024 ? s->pin_limit / 4 : 1024;
	/*
	 * Too few, or kept by systemd (-o fdstore, super/systemd.c): no pins,
	 * names in the private tmpfs instead.
	 */
	if (s->pin_base < 64 || s->fdstore)
		s->pin_base = s->pin_limit;
	s->pinned = calloc((size_t)(s->pin_limit - s->pin_base) + 1, 1);
	s->live = calloc((size_t)(s->pin_limit - s->pin_base) + 1, 1);
	return s->pinned != NULL && s->live != NULL ? 0 : -ENOMEM;
}

static bool in_range(const struct super *s, int num)
{
	return num >= s->pin_base && num < s->pin_limit;
}

void pins_hold(struct super *s, int num, int fd)
{
	if (!in_range(s, num)) {
		say(s, "segfs: cannot hold a segment at %d: outside [%d, %d)", num, s->pin_base,
		    s->pin_limit);
		close(fd);
		return;
	}
	if (fd != num) {
		if (dup3(fd, num, O_CLOEXEC) < 0) {
			say(s, "segfs: cannot hold a segment at %d: %s", num, strerror(errno));
			close(fd);
			return;
		}
		close(fd);
	}
	s->pinned[num - s->pin_base] = 1;
}

void pins_drop(struct super *s, int num)
{
	if (!in_range(s, num) || !s->pinned[num - s->pin_base])
		return;
	close(num);
	s->pinned[num - s->pin_base] = 0;
}

void pins_sync_begin(struct super *s)
{
	memset(s->live, 0, (size_t)(s->pin_limit - s->pin_base));
}

void pins_sync_live(struct super *s, const uint64_t *nums, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (in_range(s, (int)nums[i]))
			s->live[nums[i] - (uint64_t)s->pin_base] = 1;
}

/* What no record names any more: a dead server made it and never named it. */
void pins_sync_end(struct super *s)
{
	for (int num = s->pin_base; num < s->pin_limit; num++)
		if (s->pinned[num - s->pin_base] && !s->live[num - s->pin_base])
			pins_drop(s, num);
}
