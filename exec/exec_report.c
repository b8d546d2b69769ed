/*
 * The leak report (exec/exec.h): what the command's tree left in /dev/shm,
 * said the way a leak checker says it, once the tree is gone and before
 * the daemon releases it all.  A program that cleans up after itself
 * hears nothing.
 */
#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

struct tally {
	uint64_t count, bytes;
	bool say;                  /* a line for each */
};

/* 1536 -> "1.5 KiB"; whole numbers without the ".0". */
static void human(uint64_t n, char *buf, size_t size)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u < sizeof(unit) / sizeof(unit[0]) - 1) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v - (double)(uint64_t)v < 0.05)
		snprintf(buf, size, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, size, "%.1f %s", v, unit[u]);
}

/* One attribute's text value, "" if there is none (no -o xattr). */
static void attr(int dirfd, const char *name, const char *which, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "user.segfs.%s", which);
	n = fgetxattr(fd, path, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

static void say_one(int dirfd, const char *path, const char *name, const struct stat *st)
{
	char size[32], pid[32], btime[48], when[32] = "";
	struct tm tm;
	time_t t;

	human((uint64_t)st->st_size, size, sizeof(size));
	attr(dirfd, name, "pid", pid, sizeof(pid));
	attr(dirfd, name, "btime", btime, sizeof(btime));
	t = (time_t)strtoll(btime, NULL, 10);
	if (btime[0] != '\0' && localtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), " at %H:%M:%S", &tm);
	if (pid[0] != '\0' && strcmp(pid, "0") != 0)
		fprintf(stderr, "segfs-exec:   %s  %s, made by pid %s%s\n", path, size, pid, when);
	else
		fprintf(stderr, "segfs-exec:   %s  %s\n", path, size);
}

/* Counts the regular files below dirfd (path: its name for the report). */
static void walk(int dirfd, const char *path, const char *skip, struct tally *t)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;

	if (d == NULL) {
		close(dirfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[4096];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    (skip != NULL && strcmp(e->d_name, skip) == 0))
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (S_ISREG(st.st_mode)) {
			t->count++;
			t->bytes += (uint64_t)st.st_size;
			if (t->say)
				say_one(dirfd, sub, e->d_name, &st);
		} else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);

			if (fd >= 0)
				walk(fd, sub, NULL, t);
		}
	}
	closedir(d);
}

void report_leaks(const char *dir, const char *lists, bool verbose)
{
	struct tally t = { 0 };
	char size[32];
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	/* lists/ shows the root's segments again: each counts once. */
	walk(fd, dir, lists, &t);
	if (t.count == 0)
		return;
	human(t.bytes, size, sizeof(size));
	fprintf(stderr, "segfs-exec: released %" PRIu64 " segment%s (%s) left in %s\n",
		t.count, t.count == 1 ? "" : "s", size, dir);
	if (!verbose)
		return;
	t = (struct tally){ .say = true };
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		walk(fd, dir, lists, &t);
}
