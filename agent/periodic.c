/*
 * periodic: the agent's own checkpoints of jobs registered with policy
 * "periodic" (sbatch --checkpoint=periodic --checkpoint-interval=MIN): a
 * thread looks every second for jobs whose interval has passed and dumps
 * them (leave running) into a new set of the job; retention (ckpt.conf:
 * retention.keep) then keeps the last N sets.  The interval counts from
 * the registration and from the end of each checkpoint.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

static uint64_t interval_ns(const struct job *j)
{
	return (uint64_t)j->interval_min * agent.interval_unit_s * 1000000000ULL;
}

static int due_locked(struct job *j, uint64_t now)
{
	if (!j->policy || strcmp(j->policy, "periodic") || !j->interval_min || !j->nr_pids ||
	    j->disabled)
		return 0;
	if (!j->next_periodic_ns) {
		j->next_periodic_ns = now + interval_ns(j);
		return 0;
	}
	return now >= j->next_periodic_ns;
}

/* One job due now, or 0. */
static uint32_t next_due(void)
{
	uint32_t id = 0;
	uint64_t now = agent_now_ns();
	pthread_mutex_lock(&agent.lock);
	for (struct job *j = agent.jobs; j && !id; j = j->next)
		if (due_locked(j, now))
			id = j->id;
	pthread_mutex_unlock(&agent.lock);
	return id;
}

static void reschedule(uint32_t id)
{
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked(id);
	if (j)
		j->next_periodic_ns = agent_now_ns() + interval_ns(j);
	pthread_mutex_unlock(&agent.lock);
}

static void *periodic_thread(void *arg)
{
	(void)arg;
	for (;;) {
		uint32_t id;
		while ((id = next_due())) {
			agent_log(id, "periodic checkpoint");
			ops_dump_job(id, 1);
			reschedule(id);
		}
		sleep(1);
	}
	return NULL;
}

int periodic_start(void)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int ret = pthread_create(&t, &attr, periodic_thread, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		agent_log(0, "cannot start the periodic checkpoint thread");
	return ret ? -1 : 0;
}
