/*
 * cr_signals: pending signals, handlers, masks and the altstack survive.
 *
 * Before the dump: SIGUSR2 and SIGRTMIN+3 (twice) are queued to the
 * process with sigqueue() values and SIGRTMIN+4 to the main thread alone
 * (rt_tgsigqueueinfo), all blocked; SIGUSR1 has a handler with an sa_mask,
 * SA_RESTART | SA_ONSTACK | SA_NODEFER, on an alternate stack; SIGUSR2 has
 * SA_RESETHAND; SIGPIPE is ignored.  After the restore: blocked mask,
 * pending set, every sigaction (queried) and the altstack are as before;
 * unblocking delivers each signal once with its value, queue order kept;
 * SIGUSR1 runs on the altstack with its sa_mask (checked inside the
 * handler); SIGUSR2 reset to SIG_DFL after delivery.
 */
#include "crlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIG_RT1 (SIGRTMIN + 3)
#define SIG_RT2 (SIGRTMIN + 4)
#define SIG_MASKED (SIGRTMIN + 5)

struct delivery {
	int sig, value, code;
	pid_t pid;
};

static struct delivery got[16];
static volatile int nr_got;
static volatile int usr1_ran;
static char usr1_error[128];
static char altstack[1 << 16];
static int watched[] = { SIGUSR1, SIGUSR2, SIGPIPE, SIGHUP, 0, 0 };
static struct sigaction saved_act[6];
static sigset_t saved_blocked;
static stack_t saved_stack;

static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (nr_got < 16)
		got[nr_got] = (struct delivery){ sig, si->si_value.sival_int, si->si_code, si->si_pid };
	nr_got++;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	sigset_t now;
	char here;

	(void)sig; (void)si; (void)uc;
	sigprocmask(SIG_BLOCK, NULL, &now);
	if (!sigismember(&now, SIGINT) || !sigismember(&now, SIG_MASKED))
		snprintf(usr1_error, sizeof(usr1_error), "handler runs without its sa_mask");
	else if (sigismember(&now, SIGUSR1))
		snprintf(usr1_error, sizeof(usr1_error), "SA_NODEFER lost: SIGUSR1 blocked");
	else if (&here < altstack || &here >= altstack + sizeof(altstack))
		snprintf(usr1_error, sizeof(usr1_error), "handler not on the altstack");
	usr1_ran++;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags, int masked)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	if (masked) {
		sigaddset(&sa.sa_mask, SIGINT);
		sigaddset(&sa.sa_mask, SIG_MASKED);
	}
	CHECK_SYS(!sigaction(sig, &sa, NULL), "sigaction %d", sig);
}

static void queue(int sig, int value, int to_thread)
{
	siginfo_t si;

	if (!to_thread) {
		CHECK_SYS(!sigqueue(getpid(), sig, (union sigval){ .sival_int = value }),
			  "sigqueue %d", sig);
		return;
	}
	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	CHECK_SYS(!syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si),
		  "rt_tgsigqueueinfo");
}

static void setup(void)
{
	stack_t st = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigset_t block;
	int i;

	watched[4] = SIG_RT1;
	watched[5] = SIG_RT2;
	CHECK_SYS(!sigaltstack(&st, NULL), "sigaltstack");
	install(SIGUSR1, on_usr1, SA_RESTART | SA_ONSTACK | SA_NODEFER, 1);
	install(SIGUSR2, on_info, SA_RESETHAND, 0);
	install(SIG_RT1, on_info, 0, 0);
	install(SIG_RT2, on_info, SA_RESTART, 1);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIG_RT1);
	sigaddset(&block, SIG_RT2);
	sigaddset(&block, SIGWINCH);
	CHECK_SYS(!sigprocmask(SIG_BLOCK, &block, NULL), "sigprocmask");
	queue(SIG_RT1, 111, 0);
	queue(SIGUSR2, 333, 0);
	queue(SIG_RT1, 222, 0);
	queue(SIG_RT2, 444, 1);
	for (i = 0; i < 6; i++)
		CHECK_SYS(!sigaction(watched[i], NULL, &saved_act[i]), "sigaction query");
	sigprocmask(SIG_BLOCK, NULL, &saved_blocked);
	sigaltstack(NULL, &saved_stack);
}

static int same_set(const sigset_t *a, const sigset_t *b)
{
	int s;

	for (s = 1; s < SIGRTMAX; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return 0;
	return 1;
}

static void check_state(void)
{
	struct sigaction now;
	sigset_t set, want;
	stack_t st;
	int i;

	sigprocmask(SIG_BLOCK, NULL, &set);
	CHECK(same_set(&set, &saved_blocked), "blocked mask changed");
	sigemptyset(&want);
	sigaddset(&want, SIGUSR2);
	sigaddset(&want, SIG_RT1);
	sigaddset(&want, SIG_RT2);
	CHECK_SYS(!sigpending(&set), "sigpending");
	for (i = 1; i < SIGRTMAX; i++)
		CHECK(sigismember(&set, i) == sigismember(&want, i), "signal %d %s pending", i,
		      sigismember(&set, i) ? "is" : "is not");
	for (i = 0; i < 6; i++) {
		CHECK_SYS(!sigaction(watched[i], NULL, &now), "sigaction query");
		CHECK(now.sa_sigaction == saved_act[i].sa_sigaction, "signal %d: handler changed",
		      watched[i]);
		CHECK(now.sa_flags == saved_act[i].sa_flags, "signal %d: flags 0x%x, were 0x%x",
		      watched[i], now.sa_flags, saved_act[i].sa_flags);
		CHECK(same_set(&now.sa_mask, &saved_act[i].sa_mask), "signal %d: sa_mask changed",
		      watched[i]);
	}
	CHECK_SYS(!sigaltstack(NULL, &st), "sigaltstack");
	CHECK(st.ss_sp == saved_stack.ss_sp && st.ss_size == saved_stack.ss_size &&
		      st.ss_flags == saved_stack.ss_flags,
	      "altstack %p+%zu flags %d, was %p+%zu flags %d", st.ss_sp, st.ss_size, st.ss_flags,
	      saved_stack.ss_sp, saved_stack.ss_size, saved_stack.ss_flags);
}

static int find(int sig, int value)
{
	int i;

	for (i = 0; i < nr_got && i < 16; i++)
		if (got[i].sig == sig && got[i].value == value && got[i].code == SI_QUEUE &&
		    got[i].pid == getpid())
			return i;
	fail("signal %d with value %d not delivered (%d deliveries)", sig, value, nr_got);
}

static void check_delivery(void)
{
	struct sigaction now;
	sigset_t none;

	sigemptyset(&none);
	CHECK_SYS(!sigprocmask(SIG_SETMASK, &none, NULL), "sigprocmask");
	CHECK(nr_got == 4, "%d signals delivered, expected 4", nr_got);
	find(SIGUSR2, 333);
	find(SIG_RT2, 444);
	CHECK(find(SIG_RT1, 111) < find(SIG_RT1, 222), "queued signals out of order");
	CHECK_SYS(!sigaction(SIGUSR2, NULL, &now), "sigaction");
	CHECK(now.sa_handler == SIG_DFL, "SA_RESETHAND lost: SIGUSR2 handler still set");
	CHECK_SYS(!raise(SIGUSR1), "raise");
	CHECK(usr1_ran == 1, "SIGUSR1 handler ran %d times", usr1_ran);
	CHECK(!usr1_error[0], "%s", usr1_error);
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check_state();
	check_delivery();
	pass();
}
