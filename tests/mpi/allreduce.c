/* tests/mpi/allreduce.c: an allreduce loop over MIB MiB of doubles per rank
 * (64 by default) for N iterations, each rank's data depending on the last
 * sum.  Rank 0 prints a checksum of the final vector: a restored run must
 * print what an uninterrupted one does. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int rank, size, iters = argc > 1 ? atoi(argv[1]) : 40;
	long mib = argc > 2 ? atol(argv[2]) : 64, ms = argc > 3 ? atol(argv[3]) : 100;
	size_t n = (size_t)mib * 1024 * 1024 / sizeof(double);
	double *a, *b;
	uint64_t h = 14695981039346656037ull;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	a = malloc(n * sizeof(*a));
	b = malloc(n * sizeof(*b));
	if (!a || !b)
		MPI_Abort(MPI_COMM_WORLD, 1);
	for (size_t i = 0; i < n; i++)
		a[i] = (double)((i * 7 + (size_t)rank * 13) % 1000) / 1000.0;
	for (int it = 0; it < iters; it++) {
		MPI_Allreduce(a, b, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
		/* Keep values bounded and exact in binary: scale by a power
		 * of two and fold back. */
		for (size_t i = 0; i < n; i++) {
			double v = b[i] * 0.5 + (double)((i + (size_t)it + (size_t)rank) % 8) / 8.0;

			a[i] = v - (double)(int64_t)(v / 64.0) * 64.0;
		}
		if (rank == 0) {
			printf("iter %d\n", it);
			fflush(stdout);
		}
		nap(ms);
	}
	if (rank == 0) {
		for (size_t i = 0; i < n; i++) {
			uint64_t u;

			memcpy(&u, &a[i], sizeof(u));
			h = (h ^ u) * 1099511628211ull;
		}
		printf("allreduce done: %d ranks %d iters %ld MiB checksum %016llx\n", size,
		       iters, mib, (unsigned long long)h);
	}
	MPI_Finalize();
	free(a);
	free(b);
	return 0;
}
