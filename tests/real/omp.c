/*
 * omp: an OpenMP program on 2 threads for the real-program C/R test.  Each
 * round is a parallel reduction; the running total is printed after each.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 30;
	double total = 0;
	omp_set_num_threads(2);
	for (int r = 0; r < rounds; r++) {
		double s = 0;
#pragma omp parallel for reduction(+ : s)
		for (long i = 0; i < 20000000; i++)
			s += (double)((i * 7 + r) % 1000) * 0.5;
		total += s;
		printf("round %d threads %d total %.1f\n", r, omp_get_max_threads(), total);
		fflush(stdout);
	}
	return 0;
}
