/*
 * cr_timers: itimers and POSIX timers survive, POSIX timers with their ids.
 *
 * Before the dump: ITIMER_REAL first in 5 s then every 1 s (SIGALRM),
 * ITIMER_VIRTUAL and ITIMER_PROF in 100 s then every 7 s (never reached);
 * POSIX timers: A (CLOCK_MONOTONIC, SIGRTMIN+1, value 42) first in 4 s then
 * every 400 ms, B (CLOCK_REALTIME, SIGEV_NONE) in 1000 s, C
 * (CLOCK_BOOTTIME, SIGEV_THREAD_ID to the main thread, SIGRTMIN+2, value
 * 77) in 4 s then every 300 ms; a timer deleted between A and B makes the
 * ids non-contiguous.  After the restore: every timer answers under its
 * old id with the same interval and a remaining time no later than
 * before the dump, and after the check signal SIGALRM, A and C are each
 * delivered again (with their value, si_timerid and SI_TIMER).
 */
#include "crlib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SIG_A (SIGRTMIN + 1)
#define SIG_C (SIGRTMIN + 2)
#define WAIT_MS 12000
/* getitimer/timer_gettime of a CPU-time or coarse clock may read a
 * value rounded up to the next tick once it is set again. */
#define SLACK_US 20000LL

static volatile int alarms, got_a, got_c;
static char bad[160];
static timer_t ta, tb, tc;
static struct itimerval before_it[3];
static struct itimerspec before_ts[3];

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	int want_value = sig == SIG_A ? 42 : 77;
	timer_t want_id = sig == SIG_A ? ta : tc;

	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != want_value ||
	    si->si_timerid != (int)(long)want_id)
		snprintf(bad, sizeof(bad), "signal %d: code %d value %d timer %d", sig, si->si_code,
			 si->si_value.sival_int, si->si_timerid);
	if (sig == SIG_A)
		got_a++;
	else
		got_c++;
}

static void handle(int sig, int info)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (info) {
		sa.sa_sigaction = on_timer;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sa.sa_handler = on_alarm;
		sa.sa_flags = SA_RESTART;
	}
	CHECK_SYS(!sigaction(sig, &sa, NULL), "sigaction %d", sig);
}

static timer_t make_timer(clockid_t clock, int notify, int sig, int value, long first_ms,
			  long every_ms)
{
	struct sigevent ev;
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { every_ms / 1000, (every_ms % 1000) * 1000000 },
	};
	timer_t t;

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = notify;
	ev.sigev_signo = sig;
	ev.sigev_value.sival_int = value;
	if (notify == SIGEV_THREAD_ID)
		ev._sigev_un._tid = gettid();
	CHECK_SYS(!timer_create(clock, &ev, &t), "timer_create clock %d", clock);
	CHECK_SYS(!timer_settime(t, 0, &its, NULL), "timer_settime");
	return t;
}

static void set_itimer(int which, long first_s, long every_s)
{
	struct itimerval v = { .it_interval = { every_s, 0 }, .it_value = { first_s, 0 } };
	CHECK_SYS(!setitimer(which, &v, NULL), "setitimer %d", which);
}

static void setup(void)
{
	timer_t gap;

	handle(SIGALRM, 0);
	handle(SIG_A, 1);
	handle(SIG_C, 1);
	set_itimer(ITIMER_REAL, 5, 1);
	set_itimer(ITIMER_VIRTUAL, 100, 7);
	set_itimer(ITIMER_PROF, 100, 7);
	ta = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_A, 42, 4000, 400);
	gap = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 1000000, 0);
	tb = make_timer(CLOCK_REALTIME, SIGEV_NONE, 0, 0, 1000000, 0);
	CHECK_SYS(!timer_delete(gap), "timer_delete");
	tc = make_timer(CLOCK_BOOTTIME, SIGEV_THREAD_ID, SIG_C, 77, 4000, 300);
	printf("timer ids %d %d %d\n", (int)(long)ta, (int)(long)tb, (int)(long)tc);
	for (int w = 0; w < 3; w++)
		CHECK_SYS(!getitimer(w, &before_it[w]), "getitimer");
	CHECK_SYS(!timer_gettime(ta, &before_ts[0]) && !timer_gettime(tb, &before_ts[1]) &&
			  !timer_gettime(tc, &before_ts[2]),
		  "timer_gettime");
}

static long long us(struct timeval tv)
{
	return tv.tv_sec * 1000000LL + tv.tv_usec;
}

static long long ns(struct timespec ts)
{
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void check_values(void)
{
	static const char *names[] = { "REAL", "VIRTUAL", "PROF" };
	timer_t ids[3] = { ta, tb, tc };

	for (int w = 0; w < 3; w++) {
		struct itimerval now;
		CHECK_SYS(!getitimer(w, &now), "getitimer");
		CHECK(us(now.it_interval) == us(before_it[w].it_interval),
		      "ITIMER_%s: interval %lld us, was %lld", names[w], us(now.it_interval),
		      us(before_it[w].it_interval));
		/* REAL may have fired since: then it runs on its interval. */
		CHECK(us(now.it_value) > 0 &&
			      (us(now.it_value) <= us(before_it[w].it_value) + SLACK_US ||
					       us(now.it_value) <= us(now.it_interval)),
		      "ITIMER_%s: %lld us left, %lld before the dump", names[w], us(now.it_value),
		      us(before_it[w].it_value));
	}
	for (int i = 0; i < 3; i++) {
		struct itimerspec now;
		CHECK_SYS(!timer_gettime(ids[i], &now), "timer_gettime(id %d)", (int)(long)ids[i]);
		CHECK(ns(now.it_interval) == ns(before_ts[i].it_interval),
		      "timer %d: interval %lld ns, was %lld", (int)(long)ids[i], ns(now.it_interval),
		      ns(before_ts[i].it_interval));
		CHECK(ns(now.it_value) > 0 &&
			      (ns(now.it_value) <= ns(before_ts[i].it_value) + SLACK_US * 1000 ||
					       ns(now.it_value) <= ns(now.it_interval)),
		      "timer %d: %lld ns left, %lld before the dump", (int)(long)ids[i],
		      ns(now.it_value), ns(before_ts[i].it_value));
	}
}

static void check_delivery(void)
{
	uint64_t end = now_ns() + WAIT_MS * 1000000ull;

	alarms = got_a = got_c = 0;
	while ((alarms < 2 || got_a < 2 || got_c < 2) && now_ns() < end) {
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
	CHECK(!bad[0], "%s", bad);
	CHECK(alarms >= 2 && got_a >= 2 && got_c >= 2,
	      "in %d ms: %d SIGALRM, %d from timer A, %d from timer C", WAIT_MS, alarms, got_a,
	      got_c);
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check_values();
	check_delivery();
	pass();
}
