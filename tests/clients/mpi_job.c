/*
 * mpi_job: one Open MPI job as the side-by-side test runs three at once
 * under segfs-exec (tests/mount/test_devshm.py).  Built there with mpicc,
 * not by meson: Open MPI is a test dependency, not a build one.
 *
 * Rank 0 and rank 1 ping-pong 1000 small messages and 20 of 1 MiB through
 * the on-node transport (vader, whose backing files live in /dev/shm),
 * checking every byte; then rank 1 fills an MPI_Win_allocate_shared
 * window that rank 0 allocated, and rank 0 checks it through its own
 * mapping.  Each rank prints "rank R pid P ok"; any mismatch aborts.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG (1 << 20)
#define WIN_INTS 65536

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "mpi_job: %s\n", what);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
}

static void pingpong(int rank, unsigned char *buf, int len, int rounds)
{
	int peer = 1 - rank;

	for (int r = 0; r < rounds; r++) {
		unsigned char v = (unsigned char)(r * 31 + len);

		if (rank == 0) {
			memset(buf, v, (size_t)len);
			MPI_Send(buf, len, MPI_BYTE, peer, r, MPI_COMM_WORLD);
			MPI_Recv(buf, len, MPI_BYTE, peer, r, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			for (int i = 0; i < len; i++)
				check(buf[i] == (unsigned char)(v + 1), "pong came back wrong");
		} else {
			MPI_Recv(buf, len, MPI_BYTE, peer, r, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			for (int i = 0; i < len; i++)
				check(buf[i] == v, "ping came wrong");
			memset(buf, v + 1, (size_t)len);
			MPI_Send(buf, len, MPI_BYTE, peer, r, MPI_COMM_WORLD);
		}
	}
}

int main(int argc, char **argv)
{
	unsigned char *buf = malloc(BIG);
	int rank, size, disp, *base, *peer;
	MPI_Comm node;
	MPI_Aint len;
	MPI_Win win;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	check(size == 2 && buf != NULL, "needs -np 2");
	pingpong(rank, buf, 8, 1000);
	pingpong(rank, buf, BIG, 20);

	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
	MPI_Win_allocate_shared(rank == 0 ? WIN_INTS * (MPI_Aint)sizeof(int) : 0, sizeof(int),
				MPI_INFO_NULL, node, &base, &win);
	MPI_Win_shared_query(win, 0, &len, &disp, &peer);
	check(len == WIN_INTS * (MPI_Aint)sizeof(int), "window of the wrong size");
	MPI_Win_fence(0, win);
	if (rank == 1)
		for (int i = 0; i < WIN_INTS; i++)
			peer[i] = i * 7 + (int)getpid();
	MPI_Win_fence(0, win);
	/* Rank 1's pid, for rank 0 to check the window against. */
	{
		int other = (int)getpid();

		MPI_Bcast(&other, 1, MPI_INT, 1, MPI_COMM_WORLD);
		if (rank == 0)
			for (int i = 0; i < WIN_INTS; i++)
				check(base[i] == i * 7 + other, "shared window does not hold rank 1's writes");
	}
	MPI_Win_free(&win);
	MPI_Comm_free(&node);
	printf("rank %d pid %d ok\n", rank, (int)getpid());
	free(buf);
	MPI_Finalize();
	return 0;
}
