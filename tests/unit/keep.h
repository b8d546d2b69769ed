/*
 * What a namespace keeps for a next server, for the unit tests: a state
 * tmpfs (the tree's), a region of records in it, and a pin holder that
 * plays the supervisor: it holds a duplicate of every segment's file, at
 * descriptors from KEEP_PIN_BASE up (beyond what the tests' count_fds
 * counts), and
 * opens it again through /proc/self/fd.
 *
 * keep_new makes them (false where the process may not make a tmpfs);
 * keep_apply points a namespace's config at them; keep_restart plays a
 * new server: the region is mapped again (its half-done change rolled
 * back, the next area of slots taken); keep_free lets everything go, the
 * segments' files with the pins.
 */
#ifndef SEGFS_TESTS_KEEP_H
#define SEGFS_TESTS_KEEP_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "core/ns.h"
#include "core/region.h"
#include "core/store.h"

#define KEEP_PIN_BASE 8192

struct keep {
	int state;             /* the state tmpfs's root */
	struct rg *rg;
	struct store_pins pins;
	uint64_t npins;        /* pins held now */
	bool full;             /* the holder takes no more (pin is -ENOSPC) */
};

static inline int keep_pin(void *arg, int fd, uint64_t *key)
{
	struct keep *k = arg;
	int d;

	if (k->full)
		return -ENOSPC;
	d = fcntl(fd, F_DUPFD_CLOEXEC, KEEP_PIN_BASE);
	if (d < 0)
		return -errno;
	k->npins++;
	*key = (uint64_t)d;
	return 0;
}

static inline void keep_unpin(void *arg, uint64_t key)
{
	struct keep *k = arg;

	if (close((int)key) == 0)
		k->npins--;
}

static inline void keep_path(void *arg, uint64_t key, char buf[64])
{
	(void)arg;
	snprintf(buf, 64, "/proc/self/fd/%d", (int)key);
}

static inline bool keep_new(struct keep *k)
{
	struct rg_params p = { .inodes = 1 << 16, .views = 1024, .handles = 1024 };
	int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);

	*k = (struct keep){ .state = -1 };
	k->pins = (struct store_pins){ .pin = keep_pin, .unpin = keep_unpin,
				       .path = keep_path, .arg = k };
	if (fs < 0)
		return false;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		close(fs);
		return false;
	}
	k->state = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	close(fs);
	if (k->state < 0 || rg_create(k->state, &p, &k->rg) < 0) {
		if (k->state >= 0)
			close(k->state);
		k->state = -1;
		return false;
	}
	return true;
}

static inline void keep_apply(struct keep *k, struct seg_ns_config *cfg)
{
	cfg->state = k->state;
	cfg->rg = k->rg;
	cfg->pins = &k->pins;
}

/* A new server: the region mapped again.  0 or -errno. */
static inline int keep_restart(struct keep *k)
{
	char why[160];

	rg_close(k->rg);
	k->rg = NULL;
	return rg_open(k->state, &k->rg, why, sizeof(why));
}

static inline void keep_free(struct keep *k)
{
	for (int fd = KEEP_PIN_BASE; k->npins > 0 && fd < KEEP_PIN_BASE + 65536; fd++)
		if (close(fd) == 0)
			k->npins--;
	rg_close(k->rg);
	if (k->state >= 0)
		close(k->state);
	*k = (struct keep){ .state = -1 };
}

#endif
