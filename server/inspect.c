/*
 * Inspection: read-only extended attributes (README: Inspection).
 *
 *   every segment   user.segfs.pid          creator's pid ("0": unknown)
 *                   user.segfs.btime        creation, "SECONDS.NANOSECONDS"
 *                   user.segfs.open         open handles
 *                   user.segfs.passthrough  "1": FUSE passthrough, "0": cached
 *                   user.segfs.list         "1": its bytes are a ShareableList
 *   the root        user.segfs.stats        key=value lines
 *
 * Values are text without a NUL.  They live in no directory entry, so
 * listing the mount (a /dev/shm) shows nothing new.  They are shown only
 * with -o xattr: by default the mount's extended attributes are tmpfs's
 * and nothing more, so that cp -a, tar and rsync -X copy a tree into and
 * out of segfs unchanged.  With it they are listed and read like any
 * other, and refused (EPERM) to setxattr and removexattr.  Directories
 * other than the root, and lists/ entries (views, not segments), have
 * none.
 */
#include "server/node.h"
#include "server/inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PREFIX "user.segfs."
#define PREFIX_LEN (sizeof(PREFIX) - 1)

/* The names each segment carries, in listxattr's format: NUL-terminated. */
static const char seg_names[] =
	PREFIX "pid\0" PREFIX "btime\0" PREFIX "open\0" PREFIX "passthrough\0"
	PREFIX "list";
static const char root_names[] = PREFIX "stats";


/* The names `n` carries: a list of `*len` bytes (0 for none). */
const char *inspect_names(const struct node *n, size_t *len)
{
	/* What an inode is never changes: no lock needed. */
	if (n->id == FUSE_ROOT_ID) {
		*len = sizeof(root_names);
		return root_names;
	}
	if (n->ino != NULL && seg_inode_is_segment(n->ino)) {
		*len = sizeof(seg_names);
		return seg_names;
	}
	*len = 0;
	return "";
}

bool inspect_is_ours(const char *name)
{
	return strncmp(name, PREFIX, PREFIX_LEN) == 0;
}

bool inspect_carries(const struct node *n, const char *name)
{
	size_t len;
	const char *names = inspect_names(n, &len);

	for (const char *p = names; p < names + len; p += strlen(p) + 1)
		if (strcmp(p, name) == 0)
			return true;
	return false;
}

static bool data_path_is_passthrough(struct segfs *fs)
{
	return atomic_load(&fs->pt) == PT_ON;
}

static int stats_value(struct segfs *fs, char *buf, size_t *len)
{
	struct seg_ns_stats s;
	int rc = seg_ns_stats(fs->ns, &s), n;

	if (rc < 0)
		return rc;
	n = snprintf(buf, INSPECT_VALUE_MAX,
		     "segments=%" PRIu64 "\n"
		     "unlinked=%" PRIu64 "\n"
		     "open=%" PRIu64 "\n"
		     "bytes=%" PRIu64 "\n"
		     "reserved=%" PRIu64 "\n"
		     "size_limit=%" PRIu64 "\n"
		     "inodes=%" PRIu64 "\n"
		     "nr_segments_limit=%" PRIu64 "\n"
		     "data_path=%s\n"
		     "backing=%s\n"
		     "huge=%s\n"
		     "daemon_pid=%ld\n"
		     "server_pid=%ld\n"
		     "servers=%" PRIu64 "\n",
		     s.segments, s.unlinked, s.open, s.bytes, s.reserved, s.size_limit,
		     s.inodes, s.inode_limit,
		     data_path_is_passthrough(fs) ? "passthrough" : "fallback",
		     seg_ns_backing(fs->ns, NULL) == SEG_BACKING_TMPFS ? "tmpfs" : "memfd",
		     /* memfds' pages follow the system's shmem_enabled. */
		     seg_ns_huge(fs->ns, NULL) != NULL ? seg_ns_huge(fs->ns, NULL) : "system",
		     /* The supervisor: the process that stops segfs. */
		     (long)fs->keeper.pid, (long)getpid(),
		     fs->rg != NULL ? rg_generation(fs->rg) : 1);
	*len = (size_t)n;
	return 0;
}

/* The value of attribute `attr` (the part after the prefix) of a segment. */
static int segment_value(struct segfs *fs, struct seg_inode *ino, const char *attr,
			 char *buf, size_t *len)
{
	struct seg_info info;
	bool yes;
	int rc = seg_inspect(fs->ns, ino, &info), n;

	if (rc < 0)
		return rc;
	if (!info.segment)
		return -ENODATA;
	if (strcmp(attr, "pid") == 0) {
		n = snprintf(buf, INSPECT_VALUE_MAX, "%ld", (long)info.pid);
	} else if (strcmp(attr, "btime") == 0) {
		n = snprintf(buf, INSPECT_VALUE_MAX, "%lld.%09ld",
			     (long long)info.btime.tv_sec, info.btime.tv_nsec);
	} else if (strcmp(attr, "open") == 0) {
		n = snprintf(buf, INSPECT_VALUE_MAX, "%" PRIu32, info.nopen);
	} else if (strcmp(attr, "passthrough") == 0) {
		/*
		 * An open segment has the data path it was given; a closed one
		 * gets the mount's at its next open.
		 */
		yes = info.nopen > 0 ? info.attached : data_path_is_passthrough(fs);
		n = snprintf(buf, INSPECT_VALUE_MAX, "%d", yes);
	} else if (strcmp(attr, "list") == 0) {
		rc = lv_holds_list(fs->lists, ino, &yes);
		if (rc < 0)
			return rc;
		n = snprintf(buf, INSPECT_VALUE_MAX, "%d", yes);
	} else {
		return -ENODATA;
	}
	*len = (size_t)n;
	return 0;
}

int inspect_value(struct segfs *fs, const struct node *n, const char *name, char *buf,
		  size_t *len)
{
	if (n->id == FUSE_ROOT_ID)
		return strcmp(name, root_names) == 0 ? stats_value(fs, buf, len)
						      : -ENODATA;
	/* Directories and lists/ entries have none: only segments. */
	if (n->ino == NULL)
		return -ENODATA;
	return segment_value(fs, n->ino, name + PREFIX_LEN, buf, len);
}
