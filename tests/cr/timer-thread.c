/*
 * cr_timer_thread_*: periodic timers aimed at a thread that waits for their
 * signal with sigwaitinfo, the way glibc runs SIGEV_THREAD timers (its
 * helper thread blocks every signal and waits for signal 32, SIGTIMER,
 * which is SIG_IGN in the process), keep firing after the restore.
 *
 * Case "pending" (deterministic): the worker thread blocks every signal,
 * 32 included (raw rt_sigprocmask: glibc's leaves 32 open), 32 is SIG_IGN,
 * and a timer sends 32 to the worker alone (SIGEV_THREAD_ID) every 2 ms.
 * The worker takes 20 expiries, then stops waiting, so that the timer's
 * signal is pending at the dump (the kernel re-arms a periodic timer only
 * when its signal is taken).  After the restore that signal is still
 * pending in the worker, and the worker takes 20 more within 5 s.
 *
 * Case "sigev-thread": glibc SIGEV_THREAD timers (2 and 3 ms), each of
 * which has fired before the dump, each fire again 20 times after the
 * restore within 5 s (the zdtm pthread_timers test, made busier).
 *
 * Both failed while the restore ran with 32 unblocked (glibc's
 * sigprocmask leaves it open): with 32 SIG_IGN the kernel dropped the
 * pending signal and parked the periodic timer on its ignored list for
 * good (the process hangs, its timer "armed"); with 32 SIG_DFL, as here
 * in the sigev-thread case, the first 32 killed the restoring process.
 */
#include "crlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SIG_TIMER 32 /* glibc's SIGTIMER, under SIGRTMIN */
#define FIRES 20
#define WAIT_MS 5000
#define NR_THREAD_TIMERS 4

static volatile int phase; /* 1: worker taking expiries, 2: idle, 3: taking again */
static volatile int taken;
static volatile pid_t worker_tid;
static volatile uint64_t fired[NR_THREAD_TIMERS];

static void raw_block_all(void)
{
	uint64_t all = ~0ULL;
	CHECK_SYS(!syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all)),
		  "rt_sigprocmask");
}

/* struct kernel_sigaction; glibc's sigaction() refuses signal 32. */
static void raw_ignore_timer_signal(void)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} sa = { SIG_IGN, 0, NULL, 0 };
	CHECK_SYS(!syscall(SYS_rt_sigaction, SIG_TIMER, &sa, NULL, 8), "rt_sigaction(32)");
}

static void take_expiry(void)
{
	uint64_t set = 1ULL << (SIG_TIMER - 1);
	siginfo_t si;
	long sig = syscall(SYS_rt_sigtimedwait, &set, &si, NULL, 8);

	if (sig < 0)
		return; /* EINTR: the dump interrupted the wait */
	CHECK(sig == SIG_TIMER && si.si_code == SI_TIMER && si.si_value.sival_int == 32,
	      "worker: signal %ld code %d value %d", sig, si.si_code, si.si_value.sival_int);
	taken++;
}

static void *worker(void *arg)
{
	(void)arg;
	raw_block_all();
	worker_tid = gettid();
	while (phase < 3) {
		if (phase == 1 && taken < FIRES)
			take_expiry();
		else
			usleep(1000);
	}
	for (;;)
		take_expiry();
	return NULL;
}

static int worker_has_pending(void)
{
	char path[64], line[128];
	unsigned long long pend = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", worker_tid);
	FILE *f = fopen(path, "re");
	CHECK_SYS(f, "%s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigPnd: %llx", &pend) == 1)
			break;
	fclose(f);
	return (pend >> (SIG_TIMER - 1)) & 1;
}

static void wait_for(volatile int *v, int want, const char *what)
{
	uint64_t end = now_ns() + WAIT_MS * 1000000ull;

	while (*v < want && now_ns() < end)
		usleep(1000);
	CHECK(*v >= want, "%s: %d in %d ms, want %d", what, *v, WAIT_MS, want);
}

static void setup_pending(void)
{
	pthread_t th;
	struct sigevent ev;
	struct itimerspec its = { .it_interval = { 0, 2000000 }, .it_value = { 0, 2000000 } };
	timer_t t;

	test_block_check();
	raw_ignore_timer_signal();
	phase = 1;
	CHECK(!pthread_create(&th, NULL, worker, NULL), "pthread_create");
	while (!worker_tid)
		usleep(1000);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIG_TIMER;
	ev.sigev_value.sival_int = 32;
	ev._sigev_un._tid = worker_tid;
	CHECK_SYS(!timer_create(CLOCK_MONOTONIC, &ev, &t), "timer_create");
	CHECK_SYS(!timer_settime(t, 0, &its, NULL), "timer_settime");
	wait_for(&taken, FIRES, "expiries taken before the dump");
	phase = 2;
	for (int i = 0; i < 1000 && !worker_has_pending(); i++)
		usleep(1000);
	CHECK(worker_has_pending(), "signal %d never pending in the worker", SIG_TIMER);
}

static void check_pending(void)
{
	CHECK(worker_has_pending(),
	      "the timer's signal %d, pending in thread %d at the dump, is lost", SIG_TIMER,
	      worker_tid);
	taken = 0;
	phase = 3;
	wait_for(&taken, FIRES, "expiries taken after the restore");
	pass();
}

static void on_fire(union sigval v)
{
	__atomic_add_fetch(&fired[v.sival_int], 1, __ATOMIC_RELAXED);
}

static void wait_fires(uint64_t want[NR_THREAD_TIMERS], const char *when)
{
	uint64_t end = now_ns() + WAIT_MS * 1000000ull;
	int i = 0;

	while (i < NR_THREAD_TIMERS && now_ns() < end) {
		if (fired[i] >= want[i])
			i++;
		else
			usleep(1000);
	}
	CHECK(i == NR_THREAD_TIMERS,
	      "%s: SIGEV_THREAD timer %d fired %llu times in %d ms, want %llu", when, i,
	      (unsigned long long)fired[i], WAIT_MS, (unsigned long long)want[i]);
}

static void setup_sigev_thread(void)
{
	uint64_t once[NR_THREAD_TIMERS];

	test_block_check();
	for (int i = 0; i < NR_THREAD_TIMERS; i++) {
		long ns = (2 + i % 2) * 1000000L;
		struct itimerspec its = { .it_interval = { 0, ns }, .it_value = { 0, ns } };
		struct sigevent ev;
		timer_t t;

		memset(&ev, 0, sizeof(ev));
		ev.sigev_notify = SIGEV_THREAD;
		ev.sigev_notify_function = on_fire;
		ev.sigev_value.sival_int = i;
		CHECK_SYS(!timer_create(CLOCK_MONOTONIC, &ev, &t), "timer_create %d", i);
		CHECK_SYS(!timer_settime(t, 0, &its, NULL), "timer_settime %d", i);
		once[i] = 1;
	}
	wait_fires(once, "before the dump");
}

static void check_sigev_thread(void)
{
	uint64_t want[NR_THREAD_TIMERS];

	for (int i = 0; i < NR_THREAD_TIMERS; i++)
		want[i] = fired[i] + FIRES;
	wait_fires(want, "after the restore");
	pass();
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "pending", setup_pending, check_pending },
		{ "sigev-thread", setup_sigev_thread, check_sigev_thread },
	};

	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
