/*
 * segmap: drive one MAP_SHARED mapping of a file, one command at a time.
 *
 *     segmap PATH
 *
 * Commands are read from stdin, one per line; every command gets exactly one
 * reply line on stdout, flushed at once, so a test can interleave this
 * process's stores and loads with its own without any msync().  Numbers are
 * decimal.  Replies: "ok [VALUE]", "err ERRNO NAME", "sigbus" (the access hit
 * a page past end of file), "bad POS GOT WANT" (verify found a wrong byte),
 * or "usage ..." for a malformed command.
 *
 *     open r|rw|rwc      open PATH read-only, read-write, or read-write+O_CREAT
 *     close              close the descriptor (a mapping stays valid)
 *     map LEN            mmap(MAP_SHARED) LEN bytes at offset 0
 *     unmap              munmap the mapping
 *     truncate LEN       ftruncate the descriptor
 *     size               reply "ok ST_SIZE" from fstat
 *     fill OFF LEN SEED  store pattern(SEED) into mapping bytes [OFF, OFF+LEN)
 *     verify OFF LEN SEED  load those bytes and compare with pattern(SEED)
 *     peek OFF           reply "ok BYTE" with the mapped byte at OFF
 *     poke OFF BYTE      store BYTE at mapping offset OFF
 *     quit               exit 0 (so does end of input)
 *
 * pattern(SEED) gives byte (POS % 251 + SEED) & 0xff at file offset POS.  The
 * period 251 is prime, so a page that lands at the wrong offset is caught.
 *
 * A SIGBUS during an access is caught with sigsetjmp/siglongjmp and reported;
 * the process stays usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_armed;

static const char *path;
static int fd = -1;
static uint8_t *map;
static size_t map_len;
static int map_prot;

static void on_sigbus(int sig)
{
	if (fault_armed)
		siglongjmp(fault_env, 1);
	/* A fault outside a guarded access is a bug here: die of it. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void reply_errno(int e)
{
	printf("err %d %s\n", e, strerror(e));
}

static void pattern(uint8_t *buf, size_t pos, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(((pos + i) % 251 + seed) & 0xff);
}

/* Checks that [off, off+len) lies inside the current mapping. */
static int in_map(size_t off, size_t len)
{
	if (map == NULL) {
		printf("usage no mapping\n");
		return 0;
	}
	if (off > map_len || len > map_len - off) {
		printf("usage range outside mapping of %zu bytes\n", map_len);
		return 0;
	}
	return 1;
}

/*
 * The guarded accessors below return 0, or -1 after a SIGBUS.  State that
 * must survive a siglongjmp lives in static storage or is volatile.
 */
static volatile size_t g_done;

static int guarded_fill(size_t off, size_t len, unsigned seed)
{
	static uint8_t buf[CHUNK];

	g_done = 0;
	if (sigsetjmp(fault_env, 1)) {
		fault_armed = 0;
		return -1;
	}
	fault_armed = 1;
	while (g_done < len) {
		size_t n = len - g_done < CHUNK ? len - g_done : CHUNK;
		pattern(buf, off + g_done, n, seed);
		memcpy(map + off + g_done, buf, n);
		g_done += n;
	}
	fault_armed = 0;
	return 0;
}

/* On a mismatch, *bad is set to its file offset and *got and *want to the bytes. */
static int guarded_verify(size_t off, size_t len, unsigned seed, long long *bad,
			  unsigned *got, unsigned *want)
{
	static uint8_t buf[CHUNK];

	g_done = 0;
	*bad = -1;
	if (sigsetjmp(fault_env, 1)) {
		fault_armed = 0;
		return -1;
	}
	fault_armed = 1;
	while (g_done < len) {
		size_t n = len - g_done < CHUNK ? len - g_done : CHUNK;
		pattern(buf, off + g_done, n, seed);
		if (memcmp(map + off + g_done, buf, n) != 0) {
			for (size_t i = 0; i < n; i++) {
				if (map[off + g_done + i] != buf[i]) {
					*bad = (long long)(off + g_done + i);
					*got = map[off + g_done + i];
					*want = buf[i];
					break;
				}
			}
			break;
		}
		g_done += n;
	}
	fault_armed = 0;
	return 0;
}

static int guarded_peek(size_t off, unsigned *val)
{
	if (sigsetjmp(fault_env, 1)) {
		fault_armed = 0;
		return -1;
	}
	fault_armed = 1;
	*val = ((volatile uint8_t *)map)[off];
	fault_armed = 0;
	return 0;
}

static int guarded_poke(size_t off, unsigned val)
{
	if (sigsetjmp(fault_env, 1)) {
		fault_armed = 0;
		return -1;
	}
	fault_armed = 1;
	((volatile uint8_t *)map)[off] = (uint8_t)val;
	fault_armed = 0;
	return 0;
}

static void do_open(const char *mode)
{
	int flags;

	if (strcmp(mode, "r") == 0)
		flags = O_RDONLY;
	else if (strcmp(mode, "rw") == 0)
		flags = O_RDWR;
	else if (strcmp(mode, "rwc") == 0)
		flags = O_RDWR | O_CREAT;
	else {
		printf("usage open r|rw|rwc\n");
		return;
	}
	if (fd >= 0)
		close(fd);
	fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0) {
		reply_errno(errno);
		return;
	}
	map_prot = (flags & O_ACCMODE) == O_RDONLY ? PROT_READ
						   : PROT_READ | PROT_WRITE;
	printf("ok\n");
}

static void do_map(size_t len)
{
	void *p;

	if (fd < 0) {
		printf("usage not open\n");
		return;
	}
	if (map != NULL)
		munmap(map, map_len);
	map = NULL;
	p = mmap(NULL, len, map_prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		reply_errno(errno);
		return;
	}
	map = p;
	map_len = len;
	printf("ok\n");
}

static void command(char *line)
{
	char verb[16];
	unsigned long long a = 0, b = 0, c = 0;
	char word[8];
	int n;

	n = sscanf(line, "%15s %llu %llu %llu", verb, &a, &b, &c);
	if (n < 1) {
		printf("usage empty\n");
		return;
	}
	if (strcmp(verb, "open") == 0) {
		if (sscanf(line, "%*s %7s", word) != 1)
			printf("usage open r|rw|rwc\n");
		else
			do_open(word);
	} else if (strcmp(verb, "close") == 0) {
		if (fd >= 0 && close(fd) < 0)
			reply_errno(errno);
		else
			printf("ok\n");
		fd = -1;
	} else if (strcmp(verb, "map") == 0 && n == 2) {
		do_map((size_t)a);
	} else if (strcmp(verb, "unmap") == 0) {
		if (map != NULL && munmap(map, map_len) < 0) {
			reply_errno(errno);
			return;
		}
		map = NULL;
		map_len = 0;
		printf("ok\n");
	} else if (strcmp(verb, "truncate") == 0 && n == 2) {
		if (ftruncate(fd, (off_t)a) < 0)
			reply_errno(errno);
		else
			printf("ok\n");
	} else if (strcmp(verb, "size") == 0) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			reply_errno(errno);
		else
			printf("ok %lld\n", (long long)st.st_size);
	} else if (strcmp(verb, "fill") == 0 && n == 4) {
		if (!in_map((size_t)a, (size_t)b))
			return;
		if (guarded_fill((size_t)a, (size_t)b, (unsigned)c) < 0)
			printf("sigbus\n");
		else
			printf("ok\n");
	} else if (strcmp(verb, "verify") == 0 && n == 4) {
		long long bad;
		unsigned got = 0, want = 0;
		if (!in_map((size_t)a, (size_t)b))
			return;
		if (guarded_verify((size_t)a, (size_t)b, (unsigned)c, &bad, &got,
				   &want) < 0)
			printf("sigbus\n");
		else if (bad >= 0)
			printf("bad %lld %u %u\n", bad, got, want);
		else
			printf("ok\n");
	} else if (strcmp(verb, "peek") == 0 && n == 2) {
		unsigned v = 0;
		if (!in_map((size_t)a, 1))
			return;
		if (guarded_peek((size_t)a, &v) < 0)
			printf("sigbus\n");
		else
			printf("ok %u\n", v);
	} else if (strcmp(verb, "poke") == 0 && n == 3) {
		if (!in_map((size_t)a, 1))
			return;
		if (guarded_poke((size_t)a, (unsigned)b) < 0)
			printf("sigbus\n");
		else
			printf("ok\n");
	} else if (strcmp(verb, "quit") == 0) {
		exit(0);
	} else {
		printf("usage unknown command: %s", line);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	char line[256];

	if (argc != 2) {
		fprintf(stderr, "usage: segmap PATH  (commands on stdin)\n");
		return 2;
	}
	path = argv[1];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0) {
		perror("sigaction");
		return 1;
	}

	while (fgets(line, sizeof(line), stdin) != NULL) {
		command(line);
		fflush(stdout);
	}
	return 0;
}
