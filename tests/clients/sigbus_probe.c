/*
 * sigbus_probe: map a file and touch bytes of the mapping, reporting which
 * accesses raise SIGBUS (a page wholly past end of file).
 *
 *     sigbus_probe PATH MAPLEN [r|w]OFF...
 *
 * PATH is opened read-write and MAPLEN bytes are mapped MAP_SHARED from
 * offset 0, whatever the file's size.  Each OFF is loaded ("rOFF" or plain
 * "OFF") or stored to ("wOFF", the byte 0x5a).  One line per access:
 * "OFF ok" or "OFF sigbus".  Exit status: 0 when no access faulted, 3 when at
 * least one did, 1 on any other error, 2 on bad usage.  Each access is done
 * in a child process, so this is also a check that the kernel delivers the
 * fault as a plain SIGBUS, not as a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Returns 0 if the access completed, 1 on SIGBUS, -1 on any other outcome. */
static int probe(volatile uint8_t *p, int store)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		if (store)
			*p = 0x5a;
		else
			(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
		return 1;
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long long len;
	uint8_t *map;
	int fd, faults = 0;
	char *end;

	if (argc < 4) {
		fprintf(stderr, "usage: sigbus_probe PATH MAPLEN [r|w]OFF...\n");
		return 2;
	}
	len = strtoull(argv[2], &end, 10);
	if (*end != '\0' || len == 0) {
		fprintf(stderr, "sigbus_probe: bad MAPLEN %s\n", argv[2]);
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "sigbus_probe: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	map = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "sigbus_probe: mmap: %s\n", strerror(errno));
		return 1;
	}
	close(fd);

	for (int i = 3; i < argc; i++) {
		const char *arg = argv[i];
		int store = 0, rc;
		unsigned long long off;

		if (*arg == 'w' || *arg == 'r') {
			store = *arg == 'w';
			arg++;
		}
		off = strtoull(arg, &end, 10);
		if (*end != '\0' || off >= len) {
			fprintf(stderr, "sigbus_probe: bad offset %s\n", argv[i]);
			return 2;
		}
		rc = probe(map + off, store);
		if (rc < 0) {
			fprintf(stderr, "sigbus_probe: access at %llu: unexpected end\n", off);
			return 1;
		}
		printf("%llu %s\n", off, rc ? "sigbus" : "ok");
		faults += rc;
	}
	munmap(map, (size_t)len);
	return faults ? 3 : 0;
}
