/*
 * log: ckptd's log lines.  Every line carries the job id it concerns, so
 * that a site can grep one job's history across the agent's log.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "agent.h"

static int use_syslog;

void agent_log_to_syslog(void)
{
	openlog("ckptd", LOG_PID, LOG_DAEMON);
	use_syslog = 1;
}

uint64_t agent_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void agent_log(uint32_t job, const char *fmt, ...)
{
	char msg[1024], jobs[16] = "-";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (job)
		snprintf(jobs, sizeof(jobs), "%u", job);
	if (use_syslog) {
		syslog(LOG_INFO, "job %s: %s", jobs, msg);
		return;
	}
	time_t t = time(NULL);
	struct tm tm;
	char when[32];
	strftime(when, sizeof(when), "%F %T", gmtime_r(&t, &tm));
	fprintf(stderr, "%s ckptd: job %s: %s\n", when, jobs, msg);
}

void agent_log_burst(struct log_burst *b, const char *fmt, ...)
{
	uint64_t now = agent_now_ns();
	pthread_mutex_lock(&b->lock);
	int quiet = !b->last_ns || now - b->last_ns >= LOG_BURST_S * 1000000000ULL;
	unsigned left_out = b->left_out;
	if (quiet)
		b->last_ns = now, b->left_out = 0;
	else
		b->left_out++;
	pthread_mutex_unlock(&b->lock);
	if (!quiet)
		return;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (left_out)
		agent_log(0, "%s (and %u more like it not logged since the last one)", msg, left_out);
	else
		agent_log(0, "%s", msg);
}
