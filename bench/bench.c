/*
 * segfs-bench: measures a directory (a segfs mount, a tmpfs, anything) and
 * prints machine-readable results, one "name value unit" line each.  Every
 * value is the median of repeated runs taken after warm-ups.  Lines that
 * start with '#' are comments (configuration, raw samples).
 *
 *   segfs-bench [options] DIR [TEST...]
 *   segfs-bench [options] -d DIR0 -d DIR1 [-d DIR2...] [TEST...]
 *
 * With several directories (-d, up to 8), every test sets up its files in
 * all of them and then alternates: run 1 measures DIR0, DIR1, DIR2, run 2
 * DIR1, DIR2, DIR0, and so on, so that the machine's noise (shared, busy
 * hosts) hits every directory alike.  Results are then named NAME@K for
 * directory K, and NAME@K/0 is the median over runs of the ratio of
 * directory K's value to DIR0's value in the same run (unit "x").
 *
 * Tests (default: all of them, in this order):
 *   alloc      per run: create a file of min(SIZE, 64 MiB), ftruncate,
 *              mmap(MAP_SHARED), memset it all (fresh pages: allocation
 *              and page faults), munmap, close, unlink.  -> mmap_alloc GB/s
 *   mmap       a SIZE file, ftruncate; per run: mmap a fresh mapping,
 *              memset every byte in 1 MiB chunks, read it all back (64-bit
 *              sum, checked), munmap.  mmap_write includes the page faults
 *              of the fresh mapping, mmap_read does not (the pages are
 *              mapped by then), mmap_rw is both (2*SIZE bytes over
 *              write+read time).  -> mmap_write, mmap_read, mmap_rw GB/s
 *   mmaphot    the same memset+sum repeated on one mapping that stays
 *              mapped: no faults, only memory.  -> mmap_hot_rw GB/s
 *   rw         1 MiB pwrite over a SIZE file, then 1 MiB pread of it back.
 *              -> rw_write, rw_read GB/s
 *   lifecycle  open(O_CREAT|O_EXCL|O_RDWR) + ftruncate(4096) + mmap + touch
 *              one byte + munmap + close + unlink, a fresh name per cycle.
 *              -> lifecycle us per cycle
 *   attach     open(O_RDWR) + mmap 4096 + read one byte + munmap + close of
 *              an existing segment (SharedMemory(name) in Python).
 *              -> attach us per cycle
 *   stat       stat() of an existing file by path.   -> stat us
 *   randread   4 KiB pread at random 4 KiB-aligned offsets of a file of
 *              min(SIZE, 64 MiB).                      -> randread_4k us
 *   bigfill    (issue #15) create a fresh 512 MiB file, ftruncate, mmap,
 *              memset it all, munmap, close: the wall time of all of it,
 *              one timed run per directory, no warm-up (the unlink after
 *              is not timed).              -> create_fill_512m s
 *   contend    (issue #12) for MS milliseconds, a forked child loops
 *              { ftruncate(big, GROW); posix_fallocate(big, 0, GROW);
 *              ftruncate(big, 0) } while this process times open(O_RDWR)
 *              + close of a small existing segment beside it, sleeping
 *              US between two.  One timed run per directory, no warm-up
 *              (a run is long, and its tail is what it measures).  A
 *              directory whose statvfs has less than GROW free is
 *              skipped, with a message on stderr.
 *              -> contend_open_max ms, contend_open_p99 us,
 *              contend_open_p50 us, contend_opens (samples), contend_cycles
 *              (grow/shrink cycles the child completed)
 *
 * Options:
 *   -s MIB     size of the bandwidth file (default 256)
 *   -r N       timed runs of each bandwidth test (default 5)
 *   -w N       warm-up runs/batches, not counted (default 1)
 *   -b N       timed batches of each latency test (default 11)
 *   -n N       cycles per lifecycle/attach batch (default 200);
 *              stat and randread batches are 10x that
 *   -G MIB     size the contend test grows its segment to (default 2048)
 *   -T MS      length of a contend run (default 3000)
 *   -P US      contend: pause between two timed open+close (default 1000)
 *   -R N       start from the N-th order of the directories (scripts/bench
 *              passes the round, for the tests of a single run): see
 *              target_order()
 *   -q         quick: -s 64 -r 3 -b 5 -n 100 -T 1500
 *   -d DIR     a directory to measure (repeatable)
 *   -v         also print every sample as "# samples NAME v1 v2 ..."
 *
 * GB/s means 1e9 bytes per second.  Exit status 0, 1 on any error (the
 * message, naming the file, goes to stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)
#define CHUNK MIB
#define MAX_SAMPLES 1000
#define MAX_DIRS 8
#define MAX_METRICS 5

struct cfg {
	const char *dirs[MAX_DIRS];
	int ndirs;
	long size;    /* bytes, multiple of CHUNK */
	int reps;
	int warm;
	int batches;
	int cycles;
	int verbose;
	long grow;    /* contend: bytes the child grows its segment to */
	int grow_ms;  /* contend: length of a run */
	int pause_us; /* contend: sleep between two timed open+close */
	int rot;      /* rotation of the directory order (-R) */
};

/* Per-directory state of the test that runs. */
struct tgt {
	const char *dir;
	int index;
	char path[4096];
	int fd;
	unsigned char *map;
	unsigned char *wbuf, *rbuf;
	size_t size;
	long id;
	uint64_t seed;
	int skip;               /* setup found the directory unfit: no runs */
	char big[4096];         /* contend: the segment the child grows */
};

struct test {
	const char *name;
	int latency;                    /* runs are batches of cycles */
	int populate;                   /* fill t->fd's t->size bytes first */
	int nmet;
	const char *met[MAX_METRICS];
	const char *unit;
	void (*setup)(const struct cfg *, struct tgt *);
	/* one timed run; run is 0-based, the first c->warm are warm-ups */
	void (*run)(const struct cfg *, struct tgt *, int run, double *out);
	void (*teardown)(const struct cfg *, struct tgt *);
	int once;                       /* one timed run, no warm-up */
	const char *units[MAX_METRICS]; /* per metric, when not all `unit` */
};

static char prefix[64];

/*
 * The contend test's child, while it runs.  Every way out of this process
 * through die() kills and reaps it first; if this process is killed
 * outright (scripts/bench's timeouts), the child's PR_SET_PDEATHSIG kills
 * it.  Either way no child is left growing a 2 GiB segment.
 */
static pid_t grower_pid;

static void stop_grower_now(void)
{
	if (grower_pid > 0) {
		kill(grower_pid, SIGKILL);
		while (waitpid(grower_pid, NULL, 0) < 0 && errno == EINTR)
			;
		grower_pid = 0;
	}
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	fputs("segfs-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (e)
		fprintf(stderr, ": %s", strerror(e));
	fputc('\n', stderr);
	stop_grower_now();
	exit(1);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char msg[4200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errno = 0;
	die("%s", msg);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double tmp[MAX_SAMPLES];

	if (n <= 0)
		return 0.0;
	memcpy(tmp, v, (size_t)n * sizeof(*tmp));
	qsort(tmp, (size_t)n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
}

static void report(const struct cfg *c, const char *name, const char *unit,
                   const double *v, int n)
{
	if (c->verbose) {
		printf("# samples %s", name);
		for (int i = 0; i < n; i++)
			printf(" %.4f", v[i]);
		putchar('\n');
	}
	printf("%s %.4f %s\n", name, median(v, n), unit);
}

static void mkpath(struct tgt *t, const char *what, long i)
{
	int r;

	if (i >= 0)
		r = snprintf(t->path, sizeof(t->path), "%s/%s.%d.%s.%ld", t->dir, prefix, t->index, what, i);
	else
		r = snprintf(t->path, sizeof(t->path), "%s/%s.%d.%s", t->dir, prefix, t->index, what);
	if (r < 0 || (size_t)r >= sizeof(t->path)) {
		errno = ENAMETOOLONG;
		die("path for %s in %s", what, t->dir);
	}
}

static int create_file(const char *path)
{
	int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		die("open(O_CREAT|O_EXCL) %s", path);
	return fd;
}

static void xclose(int fd, const char *path)
{
	if (close(fd) < 0)
		die("close %s", path);
}

static void xunlink(const char *path)
{
	if (unlink(path) < 0)
		die("unlink %s", path);
}

static void xftruncate(int fd, off_t size, const char *path)
{
	if (ftruncate(fd, size) < 0)
		die("ftruncate %s to %lld", path, (long long)size);
}

static void *xmap(int fd, size_t len, const char *path)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		die("mmap %s", path);
	return p;
}

static void xunmap(void *p, size_t len, const char *path)
{
	if (munmap(p, len) < 0)
		die("munmap %s", path);
}

/* The user buffers: one pair shared by all directories, so that where
 * they happen to sit in memory cannot favour one directory. */
static unsigned char *shared_buf[2];

static unsigned char *xbuf(int which)
{
	if (!shared_buf[which]) {
		shared_buf[which] = aligned_alloc(4096, CHUNK);
		if (!shared_buf[which])
			die("out of memory");
		memset(shared_buf[which], 0, CHUNK);
	}
	return shared_buf[which];
}

static void write_all(int fd, const unsigned char *buf, size_t len, off_t off,
                      const char *path)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("pwrite %s at %lld", path, (long long)off);
		buf += n;
		len -= (size_t)n;
		off += n;
	}
}

static void read_all(int fd, unsigned char *buf, size_t len, off_t off,
                     const char *path)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("pread %s at %lld", path, (long long)off);
		if (n == 0)
			fail("pread %s at %lld: unexpected end of file", path, (long long)off);
		buf += n;
		len -= (size_t)n;
		off += n;
	}
}

static void fill(unsigned char *p, size_t size, unsigned char byte)
{
	for (size_t off = 0; off < size; off += CHUNK)
		memset(p + off, byte, size - off < CHUNK ? size - off : CHUNK);
}

/* Sum of the 64-bit words of p[0..len), four accumulators. */
static uint64_t sum64(const unsigned char *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t n = len / 8;
	uint64_t a = 0, b = 0, s = 0, d = 0;
	size_t i;

	for (i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b += w[i + 1];
		s += w[i + 2];
		d += w[i + 3];
	}
	for (; i < n; i++)
		a += w[i];
	return a + b + s + d;
}

static void check_sum(uint64_t s, size_t size, unsigned char byte, const char *path)
{
	if (s != (uint64_t)(size / 8) * (0x0101010101010101ULL * byte))
		fail("read back the wrong bytes from %s", path);
}

static double gbs(size_t bytes, double secs)
{
	return (double)bytes / secs / 1e9;
}

/* --- alloc --------------------------------------------------------------- */

static void alloc_setup(const struct cfg *c, struct tgt *t)
{
	t->size = (size_t)(c->size < 64 * MIB ? c->size : 64 * MIB);
}

static void alloc_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	(void)c;
	mkpath(t, "alloc", run);
	int fd = create_file(t->path);
	xftruncate(fd, (off_t)t->size, t->path);
	unsigned char *p = xmap(fd, t->size, t->path);
	double t0 = now();
	fill(p, t->size, 0x5c);
	double t1 = now();
	xunmap(p, t->size, t->path);
	xclose(fd, t->path);
	xunlink(t->path);
	out[0] = gbs(t->size, t1 - t0);
}

/* --- bigfill ------------------------------------------------------------ */

/*
 * What a program sharing a big array pays before it can use it: create a
 * fresh 512 MiB segment, size it, map it, write every byte, unmap, close;
 * wall time of all of it (the unlink after is not timed).  Page faults
 * dominate: huge pages make it several times cheaper.
 */
#define BIGFILL_SIZE (512 * MIB)

static void bigfill_setup(const struct cfg *c, struct tgt *t)
{
	(void)c;
	t->size = BIGFILL_SIZE;
}

static void bigfill_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	(void)c;
	mkpath(t, "bigfill", run);
	double t0 = now();
	int fd = create_file(t->path);
	xftruncate(fd, (off_t)t->size, t->path);
	unsigned char *p = xmap(fd, t->size, t->path);
	fill(p, t->size, 0xa5);
	xunmap(p, t->size, t->path);
	xclose(fd, t->path);
	double t1 = now();
	xunlink(t->path);
	out[0] = t1 - t0;
}

/* --- mmap, mmaphot ------------------------------------------------------- */

static void mmap_setup(const struct cfg *c, struct tgt *t)
{
	t->size = (size_t)c->size;
	mkpath(t, "mmap", -1);
	t->fd = create_file(t->path);
	/* Sized by the fill in turns (run_test), not here. */
}

static void mmap_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	unsigned char byte = (unsigned char)(0x11 + run);

	(void)c;
	unsigned char *p = xmap(t->fd, t->size, t->path);
	double t0 = now();
	fill(p, t->size, byte);
	double t1 = now();
	uint64_t s = sum64(p, t->size);
	double t2 = now();
	xunmap(p, t->size, t->path);
	check_sum(s, t->size, byte, t->path);
	out[0] = gbs(t->size, t1 - t0);
	out[1] = gbs(t->size, t2 - t1);
	out[2] = gbs(2 * t->size, t2 - t0);
}

static void mmap_teardown(const struct cfg *c, struct tgt *t)
{
	(void)c;
	if (t->map)
		xunmap(t->map, t->size, t->path);
	xclose(t->fd, t->path);
	xunlink(t->path);
}

static void hot_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	unsigned char byte = (unsigned char)(0x71 + run);

	(void)c;
	if (!t->map) {
		t->map = xmap(t->fd, t->size, t->path);
		fill(t->map, t->size, 1);
	}
	double t0 = now();
	fill(t->map, t->size, byte);
	uint64_t s = sum64(t->map, t->size);
	double t1 = now();
	check_sum(s, t->size, byte, t->path);
	out[0] = gbs(2 * t->size, t1 - t0);
}

/* --- rw ------------------------------------------------------------------ */

static void rw_setup(const struct cfg *c, struct tgt *t)
{
	t->size = (size_t)c->size;
	t->wbuf = xbuf(0);
	t->rbuf = xbuf(1);
	mkpath(t, "rw", -1);
	t->fd = create_file(t->path);
	/* Sized by the fill in turns (run_test), not here. */
}

static void rw_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	unsigned char byte = (unsigned char)(0x21 + run);

	(void)c;
	memset(t->wbuf, byte, CHUNK);
	double t0 = now();
	for (size_t off = 0; off < t->size; off += CHUNK)
		write_all(t->fd, t->wbuf, CHUNK, (off_t)off, t->path);
	double t1 = now();
	for (size_t off = 0; off < t->size; off += CHUNK) {
		read_all(t->fd, t->rbuf, CHUNK, (off_t)off, t->path);
		if (t->rbuf[0] != byte || t->rbuf[CHUNK - 1] != byte)
			fail("read back the wrong bytes from %s at %zu", t->path, off);
	}
	double t2 = now();
	out[0] = gbs(t->size, t1 - t0);
	out[1] = gbs(t->size, t2 - t1);
}

static void rw_teardown(const struct cfg *c, struct tgt *t)
{
	(void)c;
	xclose(t->fd, t->path);
	xunlink(t->path);
}

/* --- lifecycle, attach, stat --------------------------------------------- */

static void none(const struct cfg *c, struct tgt *t)
{
	(void)c;
	(void)t;
}

static void lifecycle_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	(void)run;
	double t0 = now();
	for (int j = 0; j < c->cycles; j++) {
		mkpath(t, "lc", t->id++);
		int fd = create_file(t->path);
		xftruncate(fd, 4096, t->path);
		volatile unsigned char *p = xmap(fd, 4096, t->path);
		p[0] = 1;
		xunmap((void *)(uintptr_t)p, 4096, t->path);
		xclose(fd, t->path);
		xunlink(t->path);
	}
	out[0] = (now() - t0) * 1e6 / c->cycles;
}

static void small_setup(const struct cfg *c, struct tgt *t)
{
	(void)c;
	mkpath(t, "small", -1);
	int fd = create_file(t->path);
	xftruncate(fd, 4096, t->path);
	xclose(fd, t->path);
}

static void small_teardown(const struct cfg *c, struct tgt *t)
{
	(void)c;
	xunlink(t->path);
}

static void attach_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	unsigned sink = 0;

	(void)run;
	double t0 = now();
	for (int j = 0; j < c->cycles; j++) {
		int fd = open(t->path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("open %s", t->path);
		volatile unsigned char *p = xmap(fd, 4096, t->path);
		sink += p[0];
		xunmap((void *)(uintptr_t)p, 4096, t->path);
		xclose(fd, t->path);
	}
	out[0] = (now() - t0) * 1e6 / c->cycles;
	if (sink != 0)
		fail("%s is not all zeroes", t->path);
}

static void stat_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	int calls = c->cycles * 10;
	struct stat st;

	(void)run;
	double t0 = now();
	for (int j = 0; j < calls; j++)
		if (stat(t->path, &st) < 0)
			die("stat %s", t->path);
	out[0] = (now() - t0) * 1e6 / calls;
	if (st.st_size != 4096)
		fail("stat %s: size %lld, not 4096", t->path, (long long)st.st_size);
}

/* --- randread ------------------------------------------------------------ */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void randread_setup(const struct cfg *c, struct tgt *t)
{
	t->size = (size_t)(c->size < 64 * MIB ? c->size : 64 * MIB);
	t->seed = 0x9e3779b97f4a7c15ULL;
	t->rbuf = xbuf(1);
	mkpath(t, "randread", -1);
	t->fd = create_file(t->path);
	/* Sized by the fill in turns (run_test), not here. */
}

static void randread_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	int calls = c->cycles * 10;
	size_t pages = t->size / 4096;

	(void)run;
	memset(t->rbuf, 0, 4096);
	double t0 = now();
	for (int j = 0; j < calls; j++) {
		off_t off = (off_t)(xorshift64(&t->seed) % pages) * 4096;
		read_all(t->fd, t->rbuf, 4096, off, t->path);
	}
	out[0] = (now() - t0) * 1e6 / calls;
	if (t->rbuf[0] != 0x5a || t->rbuf[4095] != 0x5a)
		fail("read back the wrong bytes from %s", t->path);
}

static void randread_teardown(const struct cfg *c, struct tgt *t)
{
	(void)c;
	xclose(t->fd, t->path);
	xunlink(t->path);
}

/* --- contend ------------------------------------------------------------- */

/*
 * Issue #12: a daemon that holds its namespace lock across slow work (the
 * fallocate of a growing segment) stalls every other process's metadata
 * operations for as long as that work takes.  A mean hides that; the tail
 * shows it, so this test keeps every sample of one long run and reports
 * the longest and the 99th percentile.  open+close is what it times, not
 * stat: open always reaches a FUSE daemon, while stat is answered from the
 * kernel's attribute cache for as long as segfs lets it (attr_timeout, 1 s
 * by default), so a stat loop would mostly time the cache.
 *
 * The timing loop sleeps between samples (-P, 1 ms).  Without the pause
 * it keeps a CPU busy, and on a 2-CPU machine where the child holds the
 * other one, any preemption by anything else lands inside a timed window:
 * tmpfs's own longest was then 8-12 ms on an idle VM, against 0.1-0.4 ms
 * with the pause (a light sleeper runs as soon as it wakes).  The pause
 * hides no stall that matters: one longer than the pause catches a
 * sample, which times all of it but at most the pause.
 */

/* What the growing child and the timing parent share (MAP_SHARED). */
struct grower {
	atomic_int started;     /* the child is in its loop */
	atomic_int stop;        /* the parent's request: finish the cycle, exit */
	atomic_long cycles;     /* grow/shrink cycles completed */
	atomic_int err;         /* errno of the call that failed, 0 if none */
	atomic_int step;        /* which call: 1 ftruncate up, 2 fallocate, 3 ftruncate 0 */
};

static struct grower *grower;
static double *lat;             /* one run's samples, seconds */
static size_t lat_cap;

static void grow_loop(int fd, off_t size, pid_t parent)
{
	/* Never outlive the parent, however it ends. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	atomic_store(&grower->started, 1);
	while (!atomic_load(&grower->stop)) {
		int step = 0, e = 0;

		if (ftruncate(fd, size) < 0) {
			step = 1;
			e = errno;
		} else if ((e = posix_fallocate(fd, 0, size)) != 0) {
			step = 2;
		}
		/* Shrink even after a failure, so that nothing stays allocated. */
		if (ftruncate(fd, 0) < 0 && !step) {
			step = 3;
			e = errno;
		}
		if (step) {
			atomic_store(&grower->err, e);
			atomic_store(&grower->step, step);
			_exit(1);
		}
		atomic_fetch_add(&grower->cycles, 1);
	}
	_exit(0);
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void sleep_ms(int ms)
{
	sleep_us(ms * 1000L);
}

/* Waits up to secs for the grower; returns its wait status, -1 on timeout. */
static int wait_grower(double secs)
{
	double end = now() + secs;
	int st;

	for (;;) {
		pid_t p = waitpid(grower_pid, &st, WNOHANG);

		if (p == grower_pid) {
			grower_pid = 0;
			return st;
		}
		if (p < 0 && errno != EINTR)
			die("waitpid %ld", (long)grower_pid);
		if (now() >= end)
			return -1;
		sleep_ms(1);
	}
}

static void grower_failed(const struct tgt *t, int st)
{
	static const char *const what[] = { "it ended", "ftruncate up", "posix_fallocate",
					     "ftruncate to 0" };
	int step = atomic_load(&grower->step);

	errno = atomic_load(&grower->err);
	if (step < 1 || step > 3) {
		step = 0;
		errno = 0;
	}
	die("contend: the child growing %s to %ld MiB failed (%s, status 0x%x)%s", t->big,
	    (long)(t->size / MIB), what[step], st,
	    errno == ENOSPC ? " - is the target big enough? (-G)" : "");
}

static void contend_setup(const struct cfg *c, struct tgt *t)
{
	struct statvfs sv;

	/*
	 * The child needs GROW bytes of the target for real (2 GiB by default,
	 * on tmpfs and segfs alike): a target mounted smaller is skipped with
	 * a message that says so, not failed with an ENOSPC from the child.
	 */
	t->size = (size_t)c->grow;
	if (statvfs(t->dir, &sv) < 0)
		die("statvfs %s", t->dir);
	if ((unsigned long long)sv.f_bavail * sv.f_frsize < (unsigned long long)c->grow + MIB) {
		fprintf(stderr, "segfs-bench: contend: %s has %llu MiB free, the test grows a "
			"segment to %ld MiB: skipped (lower -G or mount it larger)\n", t->dir,
			(unsigned long long)sv.f_bavail * sv.f_frsize / MIB, c->grow / MIB);
		t->skip = 1;
		return;
	}
	mkpath(t, "big", -1);
	t->fd = create_file(t->path);
	memcpy(t->big, t->path, sizeof(t->big));
	small_setup(c, t);
	/* The first open of a fresh file may take a slower path: not timed. */
	int fd = open(t->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open %s", t->path);
	xclose(fd, t->path);
	if (!grower) {
		grower = mmap(NULL, sizeof(*grower), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (grower == MAP_FAILED) {
			grower = NULL;
			die("mmap");
		}
	}
}

static void contend_run(const struct cfg *c, struct tgt *t, int run, double *out)
{
	pid_t self = getpid();
	size_t n = 0;
	int st;

	(void)run;
	atomic_store(&grower->started, 0);
	atomic_store(&grower->stop, 0);
	atomic_store(&grower->cycles, 0);
	atomic_store(&grower->err, 0);
	atomic_store(&grower->step, 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		grow_loop(t->fd, (off_t)t->size, self);
	grower_pid = pid;
	for (double end = now() + 10; !atomic_load(&grower->started);) {
		st = wait_grower(0);
		if (st != -1)
			grower_failed(t, st);
		if (now() >= end)
			fail("contend: the child did not start within 10 s");
		sleep_ms(1);
	}

	double end = now() + c->grow_ms / 1e3;
	for (double t0; (t0 = now()) < end;) {
		int fd = open(t->path, O_RDWR | O_CLOEXEC);

		if (fd < 0)
			die("open %s", t->path);
		xclose(fd, t->path);
		if (n == lat_cap) {
			size_t cap = lat_cap ? 2 * lat_cap : 65536;
			double *p = realloc(lat, cap * sizeof(*lat));

			if (!p)
				die("out of memory");
			lat = p;
			lat_cap = cap;
		}
		lat[n++] = now() - t0;
		if (c->pause_us)
			sleep_us(c->pause_us);
	}

	/*
	 * Let the child finish its cycle, so that its last grow is not cut
	 * short in the daemon; a cycle takes a second or so, a minute means
	 * it is stuck.
	 */
	atomic_store(&grower->stop, 1);
	st = wait_grower(60);
	if (st == -1)
		fail("contend: the child growing %s did not stop within 60 s", t->big);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		grower_failed(t, st);
	xftruncate(t->fd, 0, t->big);

	long cycles = atomic_load(&grower->cycles);
	if (cycles == 0)
		fprintf(stderr, "segfs-bench: contend: %s: the child completed no grow/shrink "
			"cycle in %d ms: its figures are not under load\n", t->dir, c->grow_ms);
	qsort(lat, n, sizeof(*lat), cmp_double);
	/* Nearest rank: the smallest sample that at least p of them do not exceed. */
	size_t r99 = (n * 99 + 99) / 100, r50 = (n + 1) / 2;
	out[0] = lat[n - 1] * 1e3;
	out[1] = lat[r99 - 1] * 1e6;
	out[2] = lat[r50 - 1] * 1e6;
	out[3] = (double)n;
	out[4] = (double)cycles;
}

static void contend_teardown(const struct cfg *c, struct tgt *t)
{
	small_teardown(c, t);
	xclose(t->fd, t->big);
	xunlink(t->big);
}

static const struct test tests[] = {
	{ .name = "alloc", .nmet = 1, .met = { "mmap_alloc" }, .unit = "GB/s",
	  .setup = alloc_setup, .run = alloc_run, .teardown = none },
	{ .name = "mmap", .populate = 1, .nmet = 3,
	  .met = { "mmap_write", "mmap_read", "mmap_rw" }, .unit = "GB/s",
	  .setup = mmap_setup, .run = mmap_run, .teardown = mmap_teardown },
	{ .name = "mmaphot", .populate = 1, .nmet = 1, .met = { "mmap_hot_rw" }, .unit = "GB/s",
	  .setup = mmap_setup, .run = hot_run, .teardown = mmap_teardown },
	{ .name = "rw", .populate = 1, .nmet = 2, .met = { "rw_write", "rw_read" },
	  .unit = "GB/s", .setup = rw_setup, .run = rw_run, .teardown = rw_teardown },
	{ .name = "lifecycle", .latency = 1, .nmet = 1, .met = { "lifecycle" }, .unit = "us",
	  .setup = none, .run = lifecycle_run, .teardown = none },
	{ .name = "attach", .latency = 1, .nmet = 1, .met = { "attach" }, .unit = "us",
	  .setup = small_setup, .run = attach_run, .teardown = small_teardown },
	{ .name = "stat", .latency = 1, .nmet = 1, .met = { "stat" }, .unit = "us",
	  .setup = small_setup, .run = stat_run, .teardown = small_teardown },
	{ .name = "randread", .latency = 1, .populate = 1, .nmet = 1, .met = { "randread_4k" },
	  .unit = "us", .setup = randread_setup, .run = randread_run,
	  .teardown = randread_teardown },
	{ .name = "bigfill", .once = 1, .nmet = 1, .met = { "create_fill_512m" }, .unit = "s",
	  .setup = bigfill_setup, .run = bigfill_run, .teardown = none },
	{ .name = "contend", .once = 1, .nmet = 5,
	  .met = { "contend_open_max", "contend_open_p99", "contend_open_p50", "contend_opens",
		   "contend_cycles" },
	  .units = { "ms", "us", "us", "count", "count" },
	  .setup = contend_setup, .run = contend_run, .teardown = contend_teardown },
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static double samples[MAX_DIRS][MAX_METRICS][MAX_SAMPLES];

/*
 * The directory that runs k-th in run n: the order rotated by n / 2, and
 * reversed when n is odd.  A run can depend on the one just before it as
 * well as on its place: a fresh 512 MiB segment filled right after tmpfs
 * freed its 512 MiB took 0.65-1.3 s here, and 0.04-0.13 s anywhere else
 * (bigfill, whichever target it was).  A rotation alone keeps
 * every directory behind the same one; with the reversals each runs
 * first, last and after several others over a few rounds.
 */
static int target_order(int nd, int k, int n)
{
	int rot = n / 2;

	return n % 2 == 0 ? (k + rot) % nd : (nd - 1 - k + rot) % nd;
}

static void run_test(const struct cfg *c, const struct test *x)
{
	struct tgt tg[MAX_DIRS];
	int nd = c->ndirs;
	int runs = x->once ? 1 : x->latency ? c->batches : c->reps;
	int warm = x->once ? 0 : c->warm;
	char name[128];

	memset(tg, 0, sizeof(tg));
	for (int d = 0; d < nd; d++) {
		tg[d].dir = c->dirs[d];
		tg[d].index = d;
		tg[d].fd = -1;
		x->setup(c, &tg[d]);
	}
	/*
	 * Fill the files a chunk at a time, taking turns, so that they all get
	 * pages from the same stretches of memory: in a VM, the memory
	 * allocated first can be consistently slower or faster than the
	 * memory allocated next (host backing), which would favour one
	 * directory over another.  This fill is also what sizes the files:
	 * segfs allocates a segment's pages when ftruncate grows it, so sizing
	 * them in setup would hand one target all its memory at once.
	 */
	if (x->populate) {
		unsigned char *buf = xbuf(0);
		size_t max = 0;

		memset(buf, 0x5a, CHUNK);
		for (int d = 0; d < nd; d++)
			if (tg[d].size > max)
				max = tg[d].size;
		for (size_t off = 0; off < max; off += CHUNK)
			for (int d = 0; d < nd; d++)
				if (off < tg[d].size)
					write_all(tg[d].fd, buf, CHUNK, (off_t)off, tg[d].path);
	}
	for (int r = 0; r < warm + runs; r++) {
		for (int k = 0; k < nd; k++) {
			int d = target_order(nd, k, r + c->rot);
			double out[MAX_METRICS];

			if (tg[d].skip)
				continue;
			x->run(c, &tg[d], r, out);
			if (r >= warm)
				for (int m = 0; m < x->nmet; m++)
					samples[d][m][r - warm] = out[m];
		}
	}
	for (int d = 0; d < nd; d++)
		if (!tg[d].skip)
			x->teardown(c, &tg[d]);

	for (int m = 0; m < x->nmet; m++) {
		const char *unit = x->units[m] ? x->units[m] : x->unit;

		if (nd == 1) {
			if (!tg[0].skip)
				report(c, x->met[m], unit, samples[0][m], runs);
			continue;
		}
		for (int d = 0; d < nd; d++) {
			if (tg[d].skip)
				continue;
			snprintf(name, sizeof(name), "%s@%d", x->met[m], d);
			report(c, name, unit, samples[d][m], runs);
		}
		for (int d = 1; d < nd && !tg[0].skip; d++) {
			double ratio[MAX_SAMPLES];

			if (tg[d].skip)
				continue;

			for (int r = 0; r < runs; r++)
				ratio[r] = samples[0][m][r] > 0 ? samples[d][m][r] / samples[0][m][r] : 0;
			snprintf(name, sizeof(name), "%s@%d/0", x->met[m], d);
			report(c, name, "x", ratio, runs);
		}
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: segfs-bench [-q] [-v] [-s MIB] [-r RUNS] [-w WARMUPS] "
	           "[-b BATCHES] [-n CYCLES] [-G MIB] [-T MS] [-P US] [-R N] {DIR | -d DIR...} "
	           "[TEST...]\ntests:");
	for (size_t i = 0; i < NTESTS; i++)
		fprintf(f, " %s", tests[i].name);
	fputs(" all\n", f);
}

static int intarg(const char *s, int lo, int hi, char opt)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "segfs-bench: -%c wants a number in %d..%d\n", opt, lo, hi);
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	struct cfg c = { .size = 256 * MIB, .reps = 5, .warm = 1, .batches = 11,
	                 .cycles = 200, .grow = 2048 * MIB, .grow_ms = 3000,
	                 .pause_us = 1000 };
	int opt;
	int run[NTESTS] = { 0 };
	int any = 0;

	while ((opt = getopt(argc, argv, "qvhs:r:w:b:n:d:G:T:R:P:")) != -1) {
		switch (opt) {
		case 'q':
			c.size = 64 * MIB;
			c.reps = 3;
			c.batches = 5;
			c.cycles = 100;
			c.grow_ms = 1500;
			break;
		case 'v': c.verbose = 1; break;
		case 's': c.size = intarg(optarg, 1, 1 << 20, 's') * MIB; break;
		case 'r': c.reps = intarg(optarg, 1, MAX_SAMPLES, 'r'); break;
		case 'w': c.warm = intarg(optarg, 0, 100, 'w'); break;
		case 'b': c.batches = intarg(optarg, 1, MAX_SAMPLES, 'b'); break;
		case 'n': c.cycles = intarg(optarg, 1, 1000000, 'n'); break;
		case 'G': c.grow = intarg(optarg, 1, 1 << 20, 'G') * MIB; break;
		case 'T': c.grow_ms = intarg(optarg, 100, 600000, 'T'); break;
		case 'R': c.rot = intarg(optarg, 0, 1000000, 'R'); break;
		case 'P': c.pause_us = intarg(optarg, 0, 1000000, 'P'); break;
		case 'd':
			if (c.ndirs == MAX_DIRS) {
				fprintf(stderr, "segfs-bench: at most %d directories\n", MAX_DIRS);
				return 2;
			}
			c.dirs[c.ndirs++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (c.ndirs == 0) {
		if (optind >= argc) {
			usage(stderr);
			return 2;
		}
		c.dirs[c.ndirs++] = argv[optind++];
	}
	for (; optind < argc; optind++) {
		int found = 0;

		for (size_t i = 0; i < NTESTS; i++)
			if (!strcmp(argv[optind], tests[i].name) || !strcmp(argv[optind], "all"))
				run[i] = any = found = 1;
		if (!found) {
			fprintf(stderr, "segfs-bench: unknown test '%s'\n", argv[optind]);
			usage(stderr);
			return 2;
		}
	}
	if (!any)
		for (size_t i = 0; i < NTESTS; i++)
			run[i] = 1;

	snprintf(prefix, sizeof(prefix), "segfs-bench.%ld", (long)getpid());
	printf("# segfs-bench size=%ld runs=%d warmups=%d batches=%d cycles=%d grow=%ld "
	       "grow_ms=%d pause_us=%d rot=%d", c.size, c.reps, c.warm, c.batches, c.cycles,
	       c.grow, c.grow_ms, c.pause_us, c.rot);
	for (int d = 0; d < c.ndirs; d++)
		printf(" dir%d=%s", d, c.dirs[d]);
	putchar('\n');
	fflush(stdout);
	for (size_t i = 0; i < NTESTS; i++)
		if (run[i])
			run_test(&c, &tests[i]);
	return 0;
}
