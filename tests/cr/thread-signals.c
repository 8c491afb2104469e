/*
 * cr_thread_signals: a second thread's own pending signals (with their
 * siginfo) and its own altstack survive.
 *
 * Before the dump: the worker thread sets an altstack of its own, blocks
 * SIGUSR1 and SIGRTMIN+6, and the main thread queues to it alone
 * (rt_tgsigqueueinfo) SIGUSR1 with value 5 and SIGRTMIN+6 twice (values 6
 * and 7).  After the restore the worker sees them pending (and the main
 * thread does not), its altstack unchanged; unblocked, each is delivered
 * once with its value and code, on the altstack, the two SIGRTMIN+6 in
 * queue order.
 */
#include "crlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIG_RT (SIGRTMIN + 6)

static char altstack[1 << 16];
static stack_t saved_stack;
static volatile int phase; /* 1: worker set up, 2: check, 3: worker done */
static int got_sig[4], got_val[4], nr_got;
static char bad[128];
static pid_t worker_tid;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	char here;

	(void)uc;
	if (&here < altstack || &here >= altstack + sizeof(altstack))
		snprintf(bad, sizeof(bad), "signal %d not on the thread's altstack", sig);
	if (si->si_code != SI_QUEUE || si->si_pid != getpid())
		snprintf(bad, sizeof(bad), "signal %d: code %d pid %d", sig, si->si_code, si->si_pid);
	if (nr_got < 4) {
		got_sig[nr_got] = sig;
		got_val[nr_got] = si->si_value.sival_int;
	}
	nr_got++;
}

static sigset_t our_set(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIG_RT);
	return set;
}

static void check_worker(void)
{
	sigset_t pending, set = our_set();
	stack_t st;

	CHECK_SYS(!sigpending(&pending), "sigpending");
	CHECK(sigismember(&pending, SIGUSR1) && sigismember(&pending, SIG_RT),
	      "worker: its signals are not pending");
	CHECK_SYS(!sigaltstack(NULL, &st), "sigaltstack");
	CHECK(st.ss_sp == saved_stack.ss_sp && st.ss_size == saved_stack.ss_size &&
		      st.ss_flags == saved_stack.ss_flags,
	      "worker: altstack %p+%zu, was %p+%zu", st.ss_sp, st.ss_size, saved_stack.ss_sp,
	      saved_stack.ss_size);
	CHECK(!pthread_sigmask(SIG_UNBLOCK, &set, NULL), "unblock");
	CHECK(!bad[0], "%s", bad);
	CHECK(nr_got == 3, "worker: %d signals delivered, expected 3", nr_got);
	int usr1 = -1, rt6 = -1, rt7 = -1;
	for (int i = 0; i < 3; i++) {
		if (got_sig[i] == SIGUSR1 && got_val[i] == 5)
			usr1 = i;
		if (got_sig[i] == SIG_RT && got_val[i] == 6)
			rt6 = i;
		if (got_sig[i] == SIG_RT && got_val[i] == 7)
			rt7 = i;
	}
	CHECK(usr1 >= 0 && rt6 >= 0 && rt7 > rt6, "worker: got %d/%d %d/%d %d/%d", got_sig[0],
	      got_val[0], got_sig[1], got_val[1], got_sig[2], got_val[2]);
}

static void *worker(void *arg)
{
	stack_t st = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigset_t set = our_set();

	(void)arg;
	CHECK_SYS(!sigaltstack(&st, NULL), "sigaltstack");
	CHECK_SYS(!sigaltstack(NULL, &saved_stack), "sigaltstack");
	CHECK(!pthread_sigmask(SIG_BLOCK, &set, NULL), "block");
	worker_tid = gettid();
	__atomic_store_n(&phase, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&phase, __ATOMIC_SEQ_CST) != 2)
		usleep(1000);
	check_worker();
	__atomic_store_n(&phase, 3, __ATOMIC_SEQ_CST);
	return NULL;
}

static void queue(int sig, int value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	CHECK_SYS(!syscall(SYS_rt_tgsigqueueinfo, getpid(), worker_tid, sig, &si),
		  "rt_tgsigqueueinfo");
}

int main(void)
{
	struct sigaction sa;
	sigset_t pending;
	pthread_t th;

	test_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	CHECK_SYS(!sigaction(SIGUSR1, &sa, NULL) && !sigaction(SIG_RT, &sa, NULL), "sigaction");
	test_block_check();
	CHECK(!pthread_create(&th, NULL, worker, NULL), "pthread_create");
	while (__atomic_load_n(&phase, __ATOMIC_SEQ_CST) != 1)
		usleep(1000);
	queue(SIGUSR1, 5);
	queue(SIG_RT, 6);
	queue(SIG_RT, 7);
	/* Only the main thread takes the check signal. */
	sigset_t check;
	sigemptyset(&check);
	sigaddset(&check, CR_CHECK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &check, NULL);
	test_ready();
	test_wait_check();
	CHECK_SYS(!sigpending(&pending), "sigpending");
	CHECK(!sigismember(&pending, SIGUSR1) && !sigismember(&pending, SIG_RT),
	      "the worker's signals are pending in the main thread too");
	__atomic_store_n(&phase, 2, __ATOMIC_SEQ_CST);
	CHECK(!pthread_join(th, NULL), "pthread_join");
	CHECK(__atomic_load_n(&phase, __ATOMIC_SEQ_CST) == 3, "worker did not finish");
	pass();
}
