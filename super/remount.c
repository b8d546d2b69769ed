/*
 * segfs ... -o remount,...: what `mount -o remount,ro MOUNTPOINT` of a
 * segfs mount runs (mount(8) hands it to mount.fuse3, which runs
 * `segfs SOURCE MOUNTPOINT -o OPTIONS`, OPTIONS being the mount's flags
 * as they are to be, "remount" among them).  No second mount: the flags
 * go to the running mount with mount(2)'s MS_REMOUNT, which the kernel
 * takes for a FUSE mount as for any other, and whose legacy form sets the
 * superblock's ro and the mount's own flags in one call.  The kernel
 * keeps a FUSE superblock's options (user_id=, allow_other, ...) and
 * ignores them here; size= and nr_segments= are the daemon's, which this
 * does not reach: asked to stay as they are, they pass, asked to change,
 * they are refused.
 */
#include "super/super.h"

#include "common/opts.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

/* The mount flags mount(8) may hand on, set or cleared. */
static const struct {
	const char *set, *clear;
	unsigned long flag;
} flags[] = {
	{ "ro", "rw", MS_RDONLY },
	{ "nosuid", "suid", MS_NOSUID },
	{ "nodev", "dev", MS_NODEV },
	{ "noexec", "exec", MS_NOEXEC },
	{ "sync", "async", MS_SYNCHRONOUS },
	{ "dirsync", NULL, MS_DIRSYNC },
	{ "noatime", "atime", MS_NOATIME },
	{ "nodiratime", "diratime", MS_NODIRATIME },
	{ "relatime", "norelatime", MS_RELATIME },
	{ "strictatime", NULL, MS_STRICTATIME },
};

/* What the kernel keeps of a FUSE superblock, and mount(8)'s own. */
static const char *const kept[] = {
	"remount", "user_id=", "group_id=", "default_permissions", "allow_other",
	"fsname=", "subtype=", "max_read=", "blksize=", "nofail", "defaults", "_netdev",
	"x-",
};

bool remount_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *o = strncmp(argv[i], "-o", 2) == 0 && argv[i][2] != '\0' ? argv[i] + 2
				: strcmp(argv[i], "-o") == 0 && i + 1 < argc ? argv[++i] : NULL;

		for (const char *p = o; p != NULL; p = strchr(p, ',')) {
			if (*p == ',')
				p++;
			if (strncmp(p, "remount", 7) == 0 && (p[7] == ',' || p[7] == '\0'))
				return true;
		}
	}
	return false;
}

/*
 * size= or nr_segments= asked of a live mount: fine only as it is now, as
 * statfs tells it (the size limit in whole pages, as the daemon keeps it).
 */
static int same_limit(const char *mnt, const char *opt)
{
	bool size = strncmp(opt, "size=", 5) == 0;
	struct statvfs sv;
	uint64_t want, now;

	if (opts_size(strchr(opt, '=') + 1, &want) < 0)
		return -EINVAL;
	if (statvfs(mnt, &sv) < 0)
		return -errno;
	now = size ? (uint64_t)sv.f_blocks * sv.f_frsize : sv.f_files;
	if (size)
		want = want / sv.f_frsize * sv.f_frsize;
	return want == now ? 0 : -EOPNOTSUPP;
}

int control_remount(int argc, char **argv)
{
	unsigned long mask = MS_REMOUNT;
	const char *arg = NULL;
	char opts[4096] = "", mnt[PATH_MAX];
	unsigned maj, min;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%s%s",
				 opts[0] != '\0' ? "," : "", argv[++i]);
		} else if (strncmp(argv[i], "-o", 2) == 0) {
			snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), "%s%s",
				 opts[0] != '\0' ? "," : "", argv[i] + 2);
		} else if (argv[i][0] != '-') {
			arg = argv[i];   /* SOURCE MOUNTPOINT, or MOUNTPOINT: the last */
		}
	}
	/* mount(8) hands an absolute path; resolving one would ask the mount. */
	if (arg != NULL && arg[0] == '/' && strlen(arg) < sizeof(mnt))
		memcpy(mnt, arg, strlen(arg) + 1);
	else if (arg == NULL || realpath(arg, mnt) == NULL) {
		fprintf(stderr, "segfs: -o remount needs the mount point%s%s\n",
			arg != NULL ? ": " : "", arg != NULL ? strerror(errno) : "");
		return 1;
	}
	if (mountinfo_segfs(mnt, &maj, &min) < 0) {
		fprintf(stderr, "segfs: -o remount: %s is no segfs mount\n", mnt);
		return 1;
	}
	for (char *save = NULL, *o = strtok_r(opts, ",", &save); o != NULL;
	     o = strtok_r(NULL, ",", &save)) {
		bool known = false;

		for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && !known; i++) {
			if (strcmp(o, flags[i].set) == 0) {
				mask |= flags[i].flag;
				known = true;
			} else if (flags[i].clear != NULL && strcmp(o, flags[i].clear) == 0) {
				mask &= ~flags[i].flag;
				known = true;
			}
		}
		for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]) && !known; i++) {
			size_t n = strlen(kept[i]);

			known = kept[i][n - 1] == '=' || kept[i][n - 1] == '-'
				? strncmp(o, kept[i], n) == 0 : strcmp(o, kept[i]) == 0;
		}
		if (!known && (strncmp(o, "size=", 5) == 0 || strncmp(o, "nr_segments=", 12) == 0)) {
			rc = same_limit(mnt, o);
			if (rc < 0) {
				fprintf(stderr, "segfs: -o remount: %s: %s\n", o, rc == -EOPNOTSUPP
					? "the limits of a live mount cannot change yet"
					: strerror(-rc));
				return 1;
			}
			known = true;
		}
		if (!known) {
			fprintf(stderr, "segfs: -o remount: %s is no option a live mount can take\n", o);
			return 1;
		}
	}
	if (mount(NULL, mnt, NULL, mask, NULL) < 0) {
		fprintf(stderr, "segfs: -o remount of %s: %s%s\n", mnt, strerror(errno),
			errno == EBUSY && (mask & MS_RDONLY) ? " (a file is open for writing)"
			: errno == EPERM ? " (only root may remount)" : "");
		return 1;
	}
	return 0;
}
