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
 *
 * Options:
 *   -s MIB     size of the bandwidth file (default 256)
 *   -r N       timed runs of each bandwidth test (default 5)
 *   -w N       warm-up runs/batches, not counted (default 1)
 *   -b N       timed batches of each latency test (default 11)
 *   -n N       cycles per lifecycle/attach batch (default 200);
 *              stat and randread batches are 10x that
 *   -q         quick: -s 64 -r 3 -b 5 -n 100
 *   -d DIR     a directory to measure (repeatable)
 *   -v         also print every sample as "# samples NAME v1 v2 ..."
 *
 * GB/s means 1e9 bytes per second.  Exit status 0, 1 on any error (the
 * message, naming the file, goes to stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)
#define CHUNK MIB
#define MAX_SAMPLES 1000
#define MAX_DIRS 8
#define MAX_METRICS 4

struct cfg {
	const char *dirs[MAX_DIRS];
	int ndirs;
	long size;    /* bytes, multiple of CHUNK */
	int reps;
	int warm;
	int batches;
	int cycles;
	int verbose;
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
};

static char prefix[64];

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

static const struct test tests[] = {
	{ "alloc", 0, 0, 1, { "mmap_alloc" }, "GB/s", alloc_setup, alloc_run, none },
	{ "mmap", 0, 1, 3, { "mmap_write", "mmap_read", "mmap_rw" }, "GB/s",
	  mmap_setup, mmap_run, mmap_teardown },
	{ "mmaphot", 0, 1, 1, { "mmap_hot_rw" }, "GB/s", mmap_setup, hot_run, mmap_teardown },
	{ "rw", 0, 1, 2, { "rw_write", "rw_read" }, "GB/s", rw_setup, rw_run, rw_teardown },
	{ "lifecycle", 1, 0, 1, { "lifecycle" }, "us", none, lifecycle_run, none },
	{ "attach", 1, 0, 1, { "attach" }, "us", small_setup, attach_run, small_teardown },
	{ "stat", 1, 0, 1, { "stat" }, "us", small_setup, stat_run, small_teardown },
	{ "randread", 1, 1, 1, { "randread_4k" }, "us", randread_setup, randread_run,
	  randread_teardown },
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static double samples[MAX_DIRS][MAX_METRICS][MAX_SAMPLES];

static void run_test(const struct cfg *c, const struct test *x)
{
	struct tgt tg[MAX_DIRS];
	int nd = c->ndirs;
	int runs = x->latency ? c->batches : c->reps;
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
	for (int r = 0; r < c->warm + runs; r++) {
		for (int k = 0; k < nd; k++) {
			int d = (k + r) % nd;
			double out[MAX_METRICS];

			x->run(c, &tg[d], r, out);
			if (r >= c->warm)
				for (int m = 0; m < x->nmet; m++)
					samples[d][m][r - c->warm] = out[m];
		}
	}
	for (int d = 0; d < nd; d++)
		x->teardown(c, &tg[d]);

	for (int m = 0; m < x->nmet; m++) {
		if (nd == 1) {
			report(c, x->met[m], x->unit, samples[0][m], runs);
			continue;
		}
		for (int d = 0; d < nd; d++) {
			snprintf(name, sizeof(name), "%s@%d", x->met[m], d);
			report(c, name, x->unit, samples[d][m], runs);
		}
		for (int d = 1; d < nd; d++) {
			double ratio[MAX_SAMPLES];

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
	           "[-b BATCHES] [-n CYCLES] {DIR | -d DIR...} [TEST...]\ntests:");
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
	                 .cycles = 200 };
	int opt;
	int run[NTESTS] = { 0 };
	int any = 0;

	while ((opt = getopt(argc, argv, "qvhs:r:w:b:n:d:")) != -1) {
		switch (opt) {
		case 'q':
			c.size = 64 * MIB;
			c.reps = 3;
			c.batches = 5;
			c.cycles = 100;
			break;
		case 'v': c.verbose = 1; break;
		case 's': c.size = intarg(optarg, 1, 1 << 20, 's') * MIB; break;
		case 'r': c.reps = intarg(optarg, 1, MAX_SAMPLES, 'r'); break;
		case 'w': c.warm = intarg(optarg, 0, 100, 'w'); break;
		case 'b': c.batches = intarg(optarg, 1, MAX_SAMPLES, 'b'); break;
		case 'n': c.cycles = intarg(optarg, 1, 1000000, 'n'); break;
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
	printf("# segfs-bench size=%ld runs=%d warmups=%d batches=%d cycles=%d",
	       c.size, c.reps, c.warm, c.batches, c.cycles);
	for (int d = 0; d < c.ndirs; d++)
		printf(" dir%d=%s", d, c.dirs[d]);
	putchar('\n');
	fflush(stdout);
	for (size_t i = 0; i < NTESTS; i++)
		if (run[i])
			run_test(&c, &tests[i]);
	return 0;
}
