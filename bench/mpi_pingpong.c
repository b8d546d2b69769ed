/*
 * mpi_pingpong: Open MPI's on-node transport (vader, whose backing files
 * live in /dev/shm) timed between two ranks, for scripts/bench's extra
 * rows: segfs-exec's /dev/shm beside the machine's.  Built there with
 * mpicc when Open MPI is installed.
 *
 * Prints, from rank 0, "name value unit" lines: the one-way latency of an
 * 8-byte message (median of 5 runs of 10,000 round trips) and the
 * bandwidth of 1 MiB messages (median of 5 runs of 100 round trips).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Seconds for `rounds` round trips of `len` bytes (rank 0's clock). */
static double round_trips(int rank, char *buf, int len, int rounds)
{
	double t0;

	MPI_Barrier(MPI_COMM_WORLD);
	t0 = MPI_Wtime();
	for (int r = 0; r < rounds; r++) {
		if (rank == 0) {
			MPI_Send(buf, len, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
			MPI_Recv(buf, len, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(buf, len, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Send(buf, len, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
		}
	}
	return MPI_Wtime() - t0;
}

int main(int argc, char **argv)
{
	double lat[RUNS], bw[RUNS];
	int rank, size;
	char *buf;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	buf = calloc(1, 1 << 20);
	if (size != 2 || buf == NULL) {
		fprintf(stderr, "mpi_pingpong: needs -np 2\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	round_trips(rank, buf, 8, 1000);   /* warm up: connections, pages */
	for (int i = 0; i < RUNS; i++) {
		lat[i] = round_trips(rank, buf, 8, 10000) / 20000 * 1e6;
		bw[i] = 2.0 * 100 * (1 << 20) / round_trips(rank, buf, 1 << 20, 100) / 1e6;
	}
	if (rank == 0) {
		qsort(lat, RUNS, sizeof(lat[0]), cmp);
		qsort(bw, RUNS, sizeof(bw[0]), cmp);
		printf("mpi_latency_8b %.3f us\nmpi_bw_1mib %.1f MB/s\n", lat[RUNS / 2], bw[RUNS / 2]);
	}
	free(buf);
	MPI_Finalize();
	return 0;
}
