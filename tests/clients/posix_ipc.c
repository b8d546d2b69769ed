/*
 * POSIX shared memory and named semaphores, as unmodified programs use
 * them (glibc puts both in /dev/shm).  Run under segfs-exec by the tests.
 *
 *   posix_ipc shm NAME                 shm_open/ftruncate/mmap shared with
 *                                      a child, then shm_unlink
 *   posix_ipc sem NAME PROCS ITERS     PROCS processes, each opening the
 *                                      semaphore by name, add 1 to a shared
 *                                      counter ITERS times under it
 *   posix_ipc race NAME PROCS          PROCS processes race sem_open and
 *                                      shm_open with O_CREAT|O_EXCL: one wins
 *
 * Exit status 0 when everything checked out; otherwise a message on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "posix_ipc: " __VA_ARGS__); \
		fprintf(stderr, " (%s)\n", strerror(errno)); \
		exit(1); \
	} \
} while (0)

static int wait_all(int n)
{
	int bad = 0, status;

	for (int i = 0; i < n; i++) {
		CHECK(wait(&status) > 0, "wait");
		bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	return bad;
}

static int do_shm(const char *name)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	unsigned char *p;
	struct stat st;
	pid_t pid;
	int status;

	CHECK(fd >= 0, "shm_open(%s, O_CREAT|O_EXCL)", name);
	CHECK(ftruncate(fd, 8192) == 0, "ftruncate");
	CHECK(fstat(fd, &st) == 0 && st.st_size == 8192, "size after ftruncate");
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		/* The child opens the object by name, as an unrelated process would. */
		int cfd = shm_open(name, O_RDWR, 0);
		unsigned char *q;

		CHECK(cfd >= 0, "shm_open(%s) in the child", name);
		q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
		CHECK(q != MAP_FAILED, "mmap in the child");
		for (int i = 0; i < 8192; i++)
			q[i] = (unsigned char)(i * 7);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "child");
	for (int i = 0; i < 8192; i++)
		CHECK(p[i] == (unsigned char)(i * 7), "byte %d not shared", i);
	CHECK(shm_unlink(name) == 0, "shm_unlink");
	CHECK(shm_open(name, O_RDWR, 0) < 0 && errno == ENOENT, "gone after shm_unlink");
	/* The mapping outlives the name. */
	CHECK(p[100] == (unsigned char)700, "mapping after unlink");
	munmap(p, 8192);
	close(fd);
	return 0;
}

static int do_sem(const char *name, int procs, int iters)
{
	char shmname[256];
	sem_t *sem;
	long *counter;
	int fd;

	snprintf(shmname, sizeof(shmname), "%s-counter", name);
	fd = shm_open(shmname, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0, "shm_open counter");
	CHECK(ftruncate(fd, sizeof(long)) == 0, "ftruncate counter");
	counter = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(counter != MAP_FAILED, "mmap counter");
	sem = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
	CHECK(sem != SEM_FAILED, "sem_open(%s, O_CREAT|O_EXCL)", name);
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			sem_t *s = sem_open(name, 0);

			CHECK(s != SEM_FAILED, "sem_open(%s) in a child", name);
			for (int k = 0; k < iters; k++) {
				CHECK(sem_wait(s) == 0, "sem_wait");
				/* Not atomic: only the semaphore keeps this right. */
				long v = *counter;
				if ((k & 31) == 0)
					sched_yield();
				*counter = v + 1;
				CHECK(sem_post(s) == 0, "sem_post");
			}
			_exit(0);
		}
	}
	CHECK(wait_all(procs) == 0, "a child failed");
	if (*counter != (long)procs * iters) {
		fprintf(stderr, "posix_ipc: counter %ld, want %ld\n", *counter,
			(long)procs * iters);
		return 1;
	}
	CHECK(sem_close(sem) == 0, "sem_close");
	CHECK(sem_unlink(name) == 0, "sem_unlink");
	CHECK(sem_open(name, 0) == SEM_FAILED && errno == ENOENT, "gone after sem_unlink");
	CHECK(shm_unlink(shmname) == 0, "shm_unlink counter");
	return 0;
}

static int do_race(const char *name, int procs)
{
	int go[2], status, sem_wins = 0, shm_wins = 0;

	CHECK(pipe(go) == 0, "pipe");
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			char c;
			sem_t *s;
			int fd, won = 0;

			close(go[1]);
			/* Everyone starts when the pipe closes. */
			CHECK(read(go[0], &c, 1) == 0, "start");
			s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
			if (s != SEM_FAILED)
				won |= 1;
			else
				CHECK(errno == EEXIST, "sem_open lost without EEXIST");
			fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
			if (fd >= 0)
				won |= 2;
			else
				CHECK(errno == EEXIST, "shm_open lost without EEXIST");
			_exit(10 + won);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < procs; i++) {
		CHECK(wait(&status) > 0, "wait");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) >= 10 &&
		      WEXITSTATUS(status) <= 13, "racer failed");
		sem_wins += (WEXITSTATUS(status) - 10) & 1;
		shm_wins += ((WEXITSTATUS(status) - 10) & 2) >> 1;
	}
	if (sem_wins != 1 || shm_wins != 1) {
		fprintf(stderr, "posix_ipc: %d sem_open and %d shm_open winners, want 1 each\n",
			sem_wins, shm_wins);
		return 1;
	}
	CHECK(sem_unlink(name) == 0, "sem_unlink");
	CHECK(shm_unlink(name) == 0, "shm_unlink");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "shm") == 0)
		return do_shm(argv[2]);
	if (argc == 5 && strcmp(argv[1], "sem") == 0)
		return do_sem(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "race") == 0)
		return do_race(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: posix_ipc shm NAME | sem NAME PROCS ITERS | race NAME PROCS\n");
	return 2;
}
