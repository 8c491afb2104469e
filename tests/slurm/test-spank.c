/*
 * test-spank: the plugin ckpt.so without Slurm.  This program plays
 * slurmstepd: it defines the spank_* and slurm_* calls the plugin makes
 * (exported to it, CMake ENABLE_EXPORTS), loads the plugin and runs one
 * task of a step through its hooks, in the remote context:
 *
 *   test-spank PLUGIN batch|step CHECKPOINT_ARG [PLUGSTACK_ARG...]
 *
 * slurm_spank_init with the plugstack.conf arguments, the --checkpoint
 * option with CHECKPOINT_ARG ("-": not given), then slurm_spank_task_init
 * of the batch step or of step 0.  It prints what the plugin set in the
 * task's environment, one "setenv NAME=VALUE" a line, and the task's
 * argv[0] ("exec PATH"), for tests/slurm/plugin-env.sh to check.  Nothing
 * here talks to an agent or to slurmctld.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

static struct spank_option *checkpoint_opt;
static uint32_t step_id;
static char *task_argv[] = { "/job/script.sh", "arg1", NULL };

spank_context_t spank_context(void)
{
	return S_CTX_REMOTE;
}

spank_err_t spank_option_register(spank_t sp, struct spank_option *opt)
{
	(void)sp;
	if (!strcmp(opt->name, "checkpoint"))
		checkpoint_opt = opt;
	return ESPANK_SUCCESS;
}

spank_err_t spank_option_getopt(spank_t sp, struct spank_option *opt, char **arg)
{
	(void)sp, (void)opt, (void)arg;
	return ESPANK_ERROR;
}

spank_err_t spank_get_item(spank_t sp, spank_item_t item, ...)
{
	va_list ap;
	spank_err_t ret = ESPANK_SUCCESS;
	(void)sp;
	va_start(ap, item);
	if (item == S_JOB_ID)
		*va_arg(ap, uint32_t *) = 42;
	else if (item == S_JOB_STEPID)
		*va_arg(ap, uint32_t *) = step_id;
	else if (item == S_JOB_UID)
		*va_arg(ap, uid_t *) = 1000;
	else if (item == S_JOB_ARGV) {
		*va_arg(ap, int *) = 2;
		*va_arg(ap, char ***) = task_argv;
	} else
		ret = ESPANK_ERROR;
	va_end(ap);
	return ret;
}

/* The job's environment: one node (SLURM_JOB_NUM_NODES), nothing else. */
spank_err_t spank_getenv(spank_t sp, const char *var, char *buf, int len)
{
	(void)sp;
	if (strcmp(var, "SLURM_JOB_NUM_NODES") || len < 2)
		return ESPANK_ENV_NOEXIST;
	snprintf(buf, (size_t)len, "1");
	return ESPANK_SUCCESS;
}

spank_err_t spank_setenv(spank_t sp, const char *var, const char *val, int overwrite)
{
	(void)sp, (void)overwrite;
	printf("setenv %s=%s\n", var, val);
	return ESPANK_SUCCESS;
}

void slurm_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "slurm_error: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void slurm_verbose(const char *fmt, ...)
{
	(void)fmt;
}

int slurm_get_errno(void)
{
	return 0;
}

char *slurm_strerror(int err)
{
	(void)err;
	return "test-spank: no slurmctld";
}

void slurm_init_job_desc_msg(job_desc_msg_t *d)
{
	memset(d, 0, sizeof(*d));
}

int slurm_update_job(job_desc_msg_t *d)
{
	(void)d;
	return -1;
}

static spank_f *hook(void *so, const char *name)
{
	spank_f *f = (spank_f *)dlsym(so, name);
	if (!f) {
		fprintf(stderr, "test-spank: %s: %s\n", name, dlerror());
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[2], "batch") && strcmp(argv[2], "step"))) {
		fprintf(stderr, "usage: test-spank PLUGIN batch|step CHECKPOINT_ARG [ARG...]\n");
		return 2;
	}
	void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "test-spank: %s\n", dlerror());
		return 1;
	}
	step_id = !strcmp(argv[2], "batch") ? SLURM_BATCH_SCRIPT : 0;
	if (hook(so, "slurm_spank_init")(NULL, argc - 4, argv + 4))
		return 1;
	if (strcmp(argv[3], "-") && (!checkpoint_opt || checkpoint_opt->cb(0, argv[3], 1)))
		return 1;
	if (hook(so, "slurm_spank_task_init")(NULL, argc - 4, argv + 4))
		return 1;
	printf("exec %s\n", task_argv[0]);
	return 0;
}
