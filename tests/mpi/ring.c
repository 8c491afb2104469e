/* tests/mpi/ring.c: a token passed around the ranks, growing by one int per
 * hop, for N rounds; slow enough (a sleep per hop) to be checkpointed
 * mid-run.  Rank 0 prints a checksum of the final token: a restored run
 * must print what an uninterrupted one does. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 1099511628211ull;
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int rank, size, rounds = argc > 1 ? atoi(argv[1]) : 200;
	long ms = argc > 2 ? atol(argv[2]) : 10;
	int max = rounds * 64 + 1, len = 1;
	int *tok = calloc(max, sizeof(*tok));
	uint64_t h = 14695981039346656037ull;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int r = 0; r < rounds; r++) {
		if (rank == 0) {
			tok[len - 1] = r;
			MPI_Send(tok, len, MPI_INT, 1 % size, 0, MPI_COMM_WORLD);
			MPI_Recv(tok, max, MPI_INT, size - 1, 0, MPI_COMM_WORLD,
				 MPI_STATUS_IGNORE);
			
		} else {
			MPI_Status st;

			MPI_Recv(tok, max, MPI_INT, rank - 1, 0, MPI_COMM_WORLD, &st);
			MPI_Get_count(&st, MPI_INT, &len);
			tok[len] = tok[len - 1] * 31 + rank;
			len++;
			MPI_Send(tok, len, MPI_INT, (rank + 1) % size, 0, MPI_COMM_WORLD);
		}
		if (rank == 0) {
			len += size - 1;
			for (int i = 0; i < len; i++)
				h = mix(h, (uint64_t)tok[i]);
			if (r % 50 == 0) {
				printf("round %d len %d\n", r, len);
				fflush(stdout);
			}
		}
		MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
		nap(ms);
	}
	if (rank == 0)
		printf("ring done: %d ranks %d rounds checksum %016llx\n", size, rounds,
		       (unsigned long long)h);
	MPI_Finalize();
	free(tok);
	return 0;
}
