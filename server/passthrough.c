/*
 * The data path: FUSE passthrough, or the cached fallback.
 *
 * With passthrough, read, write and mmap of a segment go from the kernel
 * straight to its backing file, registered with the kernel as the
 * inode's backing file (a backing id).  The kernel allows one backing id
 * per inode, shared by all its opens, so the id belongs to the inode from
 * its first open to its last release (core/ns.h: the data path).
 * Registering needs
 * CAP_SYS_ADMIN, and the kernel offers the feature even when registration
 * will fail, so the mount decides once, at the first attempt: PT_ON, or
 * PT_OFF with the reason, for the whole mount.
 *
 * In the fallback the kernel caches segment pages itself, and the backing
 * file sees what processes write through mappings only when the pages are
 * written back; lists/ has them written back before it reads.
 */
#include "server/segfs.h"
#include "server/node.h"

#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The backing-file ioctls of <linux/fuse.h> (kernel 6.9, protocol 7.40).
 * libfuse's fuse_passthrough_open() wraps the same call but needs a
 * request (the probe has none), logs every failure and may clobber errno,
 * which we need to tell "not permitted" (fall back for good) from a
 * per-file failure.  libfuse does not install fuse_kernel.h, and Debian
 * 12's kernel headers predate these, so the ABI is spelled out here.
 */
#ifdef FUSE_CAP_PASSTHROUGH
struct backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
_Static_assert(sizeof(struct backing_map) == 16, "struct fuse_backing_map is 16 bytes");
#define BACKING_OPEN  _IOW(229, 1, struct backing_map)
#define BACKING_CLOSE _IOW(229, 2, uint32_t)

static int backing_open(struct segfs *fs, int fd)
{
	struct backing_map map = { .fd = fd };
	int id = ioctl(fuse_session_fd(fs->se), BACKING_OPEN, &map);

	return id > 0 ? id : id == 0 ? -EIO : -errno;
}

static void backing_close(struct segfs *fs, int id)
{
	uint32_t u = (uint32_t)id;

	ioctl(fuse_session_fd(fs->se), BACKING_CLOSE, &u);
}
#else
static int backing_open(struct segfs *fs, int fd)
{
	(void)fs;
	(void)fd;
	return -EOPNOTSUPP;
}

static void backing_close(struct segfs *fs, int id)
{
	(void)fs;
	(void)id;
}
#endif

/*
 * lv_sync_fn for the fallback: an open segment's newest bytes may be dirty
 * pages in the kernel.  Invalidating them makes the kernel write them back
 * first (launder), as WRITE requests that other loop threads serve, so
 * lists/ reads what processes wrote through their mappings.
 */
static void sync_segment(void *arg, struct seg_inode *seg)
{
	struct segfs *fs = arg;

	fuse_lowlevel_notify_inval_inode(fs->se, node_id(fs, seg), 0, 0);
}

/*
 * Moves the data path out of PT_UNKNOWN, once: to PT_ON, or to PT_OFF with
 * the reason.  The init thread and any opener may race here.
 */
static void pt_decide(struct segfs *fs, enum pt_state to, const char *why)
{
	/* A probe's region is mapped read-only; the decision comes at takeover. */
	if (fs->probing)
		return;
	pthread_mutex_lock(&fs->pt_lock);
	if (atomic_load(&fs->pt) == PT_UNKNOWN) {
		if (why != NULL)
			snprintf(fs->pt_reason, sizeof(fs->pt_reason), "%s", why);
		/* A server that takes over runs the data path this one chose. */
		if (fs->rg != NULL) {
			rg_pt_reason_set(fs->rg, why);
			rg_kv_set(fs->rg, RG_KV_PT, to == PT_ON ? 1 : 2);
		}
		atomic_store(&fs->pt, to);
		/*
		 * The fallback needs lists/ to sync segments first; a one-thread
		 * daemon cannot, since its thread would have to serve the writes
		 * it waits for (README: limits).
		 */
		if (to == PT_OFF && !fs->opts->singlethread)
			lv_set_sync(fs->lists, sync_segment, fs);
	}
	pthread_mutex_unlock(&fs->pt_lock);
}

int passthrough_attach(void *arg, int fd, bool privs)
{
	struct segfs *fs = arg;
	int id;

	if (atomic_load(&fs->pt) == PT_OFF)
		return 0;
	/*
	 * A setuid or setgid file, or one with file capabilities, is served by
	 * the cached path until its last close.  With FUSE_HANDLE_KILLPRIV_V2
	 * (server/init.c) the kernel leaves taking those away at a write by one
	 * without CAP_FSETID to us, and a passthrough write never reaches us:
	 * a cached one comes with FUSE_WRITE_KILL_SUIDGID.  Such files are
	 * rare in a /dev/shm; this keeps them exact, as on tmpfs.
	 */
	if (fs->killpriv && privs)
		return 0;
	id = backing_open(fs, fd);
	if (id > 0) {
		/* The kernel numbers ids upwards: a restart's sweep starts above it. */
		rg_kv_max(fs->rg, RG_KV_BACKING_MAX, (uint64_t)id);
		if (atomic_load(&fs->pt) == PT_UNKNOWN)
			pt_decide(fs, PT_ON, NULL);
		return id;
	}
	/*
	 * EPERM means the daemon lacks CAP_SYS_ADMIN (or the kernel refused
	 * passthrough at INIT): that will not change, so the whole mount falls
	 * back.  Other errors fail this open only.
	 */
	if (id == -EPERM && atomic_load(&fs->pt) == PT_UNKNOWN) {
		pt_decide(fs, PT_OFF, "registering a backing file was refused: "
			  "Operation not permitted (passthrough needs CAP_SYS_ADMIN)");
		return 0;
	}
	return id;
}

/*
 * The namespace gives an id back after the inode's last release, so no
 * open can be using it: closing it while an opener has our reply but has
 * not yet looked the id up (the kernel does so only after the reply has
 * woken the opener) would fail that open (measured: right after the reply,
 * 1538 of 2000 opens failed with EIO).
 */
void passthrough_detach(void *arg, int id)
{
	if (id > 0)
		backing_close(arg, id);
}

enum pt_state segfs_probe_passthrough(struct segfs *fs)
{
	int memfd, id;

	if (atomic_load(&fs->pt) != PT_UNKNOWN)
		return atomic_load(&fs->pt);
	/*
	 * What the probe learns (EPERM or not) is the connection's, not the
	 * file's: a memfd stands in for either backing.
	 */
	memfd = memfd_create("segfs-probe", MFD_CLOEXEC);
	if (memfd < 0)
		return atomic_load(&fs->pt);
	id = passthrough_attach(fs, memfd, false);
	passthrough_detach(fs, id);
	close(memfd);
	return atomic_load(&fs->pt);
}

#ifdef FUSE_CAP_PASSTHROUGH
/*
 * Whether this process holds CAP_SYS_ADMIN, which registering a backing
 * file needs (in the initial user namespace); read from CapEff rather than
 * attempting the ioctl, so that the fallback can say why.
 */
static bool has_sys_admin(void)
{
	unsigned long long eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool found = false;

	if (f == NULL)
		return true;   /* cannot tell: let the ioctl decide */
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return !found || (eff >> 21) & 1;   /* CAP_SYS_ADMIN is 21 */
}
#endif

const char *passthrough_why_not(const struct segfs *fs)
{
#ifdef FUSE_CAP_PASSTHROUGH
	if (fs->opts->nopassthrough)
		return "-o nopassthrough";
	if (!has_sys_admin())
		return "the daemon lacks CAP_SYS_ADMIN, which passthrough needs";
	return NULL;
#else
	return fs->opts->nopassthrough ? "-o nopassthrough"
	       : "built against libfuse < 3.17, which has no passthrough";
#endif
}

void passthrough_off(struct segfs *fs, const char *why)
{
	pt_decide(fs, PT_OFF, why);
}

void passthrough_close_id(struct segfs *fs, int id)
{
	backing_close(fs, id);
}

void passthrough_resume(struct segfs *fs)
{
	char why[160];

	switch (rg_kv_get(fs->rg, RG_KV_PT)) {
	case 1:
		pt_decide(fs, PT_ON, NULL);
		break;
	case 2:
		rg_pt_reason_get(fs->rg, why, sizeof(why));
		pt_decide(fs, PT_OFF, why);
		break;
	default:
		break;
	}
}
