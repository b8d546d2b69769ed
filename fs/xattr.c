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
 * listing the mount (a /dev/shm) shows nothing new.  segfs stores no
 * attributes: setting any is refused, ours with EPERM, others with
 * EOPNOTSUPP.  Directories other than the root, and lists/ entries (views,
 * not segments), have none.  The kernel checks permissions first: reading
 * a user.* attribute of a file needs read permission on it.
 *
 * The cost.  As long as a filesystem has no getxattr, libfuse answers
 * ENOSYS and the kernel stops asking.  Once it has one, the kernel asks for
 * "security.capability" before every write() and every truncate of a file
 * (file_remove_privs and do_truncate check whether file capabilities must
 * be dropped), even with passthrough: one more round trip each.  FUSE lets
 * the kernel skip the question (S_NOSEC) only with FUSE_HANDLE_KILLPRIV_V2,
 * and then only for writes, never for truncate.  That flag makes the daemon
 * responsible for clearing suid and sgid bits on write, which segfs cannot
 * honour: with passthrough it never sees a write, and libfuse drops the
 * kernel's FATTR_KILL_SUIDGID before setattr sees it.  So it is not used,
 * and the attributes are off unless -o xattr asks for them: without it
 * main() leaves these handlers out, libfuse answers ENOSYS, and the kernel
 * stops asking.  With it, such questions are answered first, without the
 * namespace lock.
 */
#include "fs/node.h"

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

/* Big enough for every value; stats is the longest, at about 300 bytes. */
#define VALUE_MAX 512

/* The names `n` carries: a list of `*len` bytes (0 for none). */
static const char *names_of(const struct node *n, size_t *len)
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

/* True if `name` is one of the `len` bytes of NUL-terminated names. */
static bool carries(const char *names, size_t len, const char *name)
{
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
	n = snprintf(buf, VALUE_MAX,
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
		     "daemon_pid=%ld\n",
		     s.segments, s.unlinked, s.open, s.bytes, s.reserved, s.size_limit,
		     s.inodes, s.inode_limit,
		     data_path_is_passthrough(fs) ? "passthrough" : "fallback",
		     seg_ns_backing(fs->ns, NULL) == SEG_BACKING_TMPFS ? "tmpfs" : "memfd",
		     (long)getpid());
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
		n = snprintf(buf, VALUE_MAX, "%ld", (long)info.pid);
	} else if (strcmp(attr, "btime") == 0) {
		n = snprintf(buf, VALUE_MAX, "%lld.%09ld",
			     (long long)info.btime.tv_sec, info.btime.tv_nsec);
	} else if (strcmp(attr, "open") == 0) {
		n = snprintf(buf, VALUE_MAX, "%" PRIu32, info.nopen);
	} else if (strcmp(attr, "passthrough") == 0) {
		/*
		 * An open segment has the data path it was given; a closed one
		 * gets the mount's at its next open.
		 */
		yes = info.nopen > 0 ? info.attached : data_path_is_passthrough(fs);
		n = snprintf(buf, VALUE_MAX, "%d", yes);
	} else if (strcmp(attr, "list") == 0) {
		rc = lv_holds_list(fs->lists, ino, &yes);
		if (rc < 0)
			return rc;
		n = snprintf(buf, VALUE_MAX, "%d", yes);
	} else {
		return -ENODATA;
	}
	*len = (size_t)n;
	return 0;
}

static int do_getxattr(struct segfs *fs, const struct node *n, const char *name,
		       char *buf, size_t *len)
{
	if (n->id == FUSE_ROOT_ID)
		return strcmp(name, root_names) == 0 ? stats_value(fs, buf, len)
						      : -ENODATA;
	/* Directories and lists/ entries have none: only segments. */
	if (n->ino == NULL)
		return -ENODATA;
	return segment_value(fs, n->ino, name + PREFIX_LEN, buf, len);
}

/*
 * getxattr and listxattr answer alike: a caller's size of 0 asks for the
 * length, a smaller one than needed is ERANGE.
 */
static void reply_sized(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

void xattr_get(fuse_req_t req, struct node *n, const char *name, size_t size)
{
	struct segfs *fs = fs_of(req);
	char buf[VALUE_MAX];
	size_t len = 0;
	int rc;

	/* security.capability, before every write and truncate: no lock. */
	if (strncmp(name, PREFIX, PREFIX_LEN) != 0) {
		reply_err(req, -ENODATA);
		return;
	}
	rc = do_getxattr(fs, n, name, buf, &len);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_sized(req, buf, len, size);
}

void xattr_list(fuse_req_t req, struct node *n, size_t size)
{
	const char *names;
	size_t len;

	names = names_of(n, &len);
	reply_sized(req, names, len, size);
}

void xattr_set(fuse_req_t req, struct node *n, const char *name, const char *value,
	       size_t size, int flags)
{
	(void)n;
	(void)value;
	(void)size;
	(void)flags;
	if (strncmp(name, PREFIX, PREFIX_LEN) == 0)
		reply_err(req, -EPERM);    /* ours, and read-only */
	else
		reply_err(req, -EOPNOTSUPP);   /* segfs keeps no others */
}

void xattr_remove(fuse_req_t req, struct node *n, const char *name)
{
	const char *names;
	size_t len;

	names = names_of(n, &len);
	reply_err(req, carries(names, len, name) ? -EPERM : -ENODATA);
}
