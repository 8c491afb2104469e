/*
 * ckptd: the per-node agent.  See agent.h for how it is built and
 * proto/rpc.proto for its protocol.
 *
 *   ckptd [-f|--foreground] [-s|--socket SOCKET] [-r|--run-dir RUN_DIR]
 *         [-t|--tcp PORT]
 *
 * -f stays in the foreground and logs to stderr (tests, systemd); without
 * it ckptd becomes a daemon and logs to syslog.  Settings not given come
 * from /etc/ckpt/ckpt.conf ($CKPT_CONF): agent.socket, agent.run_dir,
 * agent.tcp_port (0: no TCP, the default; --tcp 0 turns off a port the
 * file sets), agent.max_conns_per_uid,
 * agent.request_timeout_s.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/client.h"
#include "conf.h"
#include "wire.h"

struct agent agent = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct settings {
	const char *socket;
	const char *run_dir;
	uint64_t tcp_port;
	int tcp_given; /* --tcp, even --tcp 0: agent.tcp_port is not read */
	int foreground;
};

static int listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path)) {
		agent_log(0, "socket path %s is too long", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A live agent keeps its socket: refuse to start twice. */
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		agent_log(0, "%s: another ckptd is running", path);
		close(fd);
		return -1;
	}
	unlink(path);
	mode_t old = umask(0);
	/* Every local user may connect; each request is authorized. */
	int ret = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (ret || chmod(path, 0666) || listen(fd, 128)) {
		agent_log(0, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int make_dirs(const char *run_dir)
{
	char path[PATH_MAX];
	const char *sub[] = { "", "/ops", "/registry" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", run_dir, sub[i]);
		if (mkdir(path, 0755) && errno != EEXIST) {
			agent_log(0, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* A unix peer is known from SO_PEERCRED; a TCP one once it sends its
 * munge credential (tcp_auth).  Its first request is due by the deadline
 * from now, however slowly it comes. */
static struct conn *conn_new(int fd, int tcp)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (!c || (!tcp && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->tcp = tcp;
	c->authed = !tcp;
	if (!tcp)
		c->peer = (struct peer){ cr.uid, cr.gid, cr.pid };
	c->deadline_ns = wire_clock_ns() + agent.request_timeout_ns;
	return c;
}

static int spawn_conn_thread(struct conn *c)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int ret = pthread_create(&t, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	return ret;
}

/* Called by the accept loop: a refusal (slots.c) is one small reply on a
 * fresh socket, which never blocks it. */
void start_conn(int fd, int tcp)
{
	char why[256];
	struct conn *c = conn_new(fd, tcp);
	int ret = c ? slots_take(c, why, sizeof(why)) : -ENOMEM;
	if (ret == -EAGAIN)
		conn_error(fd, ret, "%s", why);
	if (!ret && !spawn_conn_thread(c))
		return;
	if (c)
		slots_give_back(c);
	close(fd);
	free(c);
}

/* -1 after one line naming the file, the key and its bad value, as
 * conf_get_u64 names one that is not a number. */
static int bad_key(const char *key, uint64_t value, const char *want)
{
	fprintf(stderr, "ckptd: %s: %s = %llu: %s\n", conf_path(), key, (unsigned long long)value,
		want);
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: ckptd [-f|--foreground] [-s|--socket SOCKET] [-r|--run-dir RUN_DIR]\n"
			"             [-t|--tcp PORT]\n");
}

static int parse_args(int argc, char **argv, struct settings *s)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, 0, 'f' },
		{ "socket", required_argument, 0, 's' },
		{ "run-dir", required_argument, 0, 'r' },
		{ "tcp", required_argument, 0, 't' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "fs:r:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'f': s->foreground = 1; break;
		case 's': s->socket = optarg; break;
		case 'r': s->run_dir = optarg; break;
		case 't':
			if (conf_parse_size(optarg, &s->tcp_port) || s->tcp_port > 65535) {
				fprintf(stderr, "ckptd: --tcp %s: not a port\n", optarg);
				return -1;
			}
			s->tcp_given = 1;
			break;
		default:
			usage();
			return -1;
		}
	}
	if (optind == argc)
		return 0;
	fprintf(stderr, "ckptd: unexpected argument '%s'\n", argv[optind]);
	usage();
	return -1;
}

/* Command line first, then the configuration file, then defaults. */
static int load_settings(int argc, char **argv, struct settings *s, struct conf **conf)
{
	if (parse_args(argc, argv, s) || conf_load(conf_path(), conf))
		return -1;
	if (!s->socket)
		s->socket = conf_get(*conf, "agent.socket", CKPT_SOCKET_DEFAULT);
	if (!s->run_dir)
		s->run_dir = conf_get(*conf, "agent.run_dir", "/run/ckpt");
	if (!s->tcp_given && conf_get_u64(*conf, "agent.tcp_port", 0, &s->tcp_port))
		return -1;
	if (s->tcp_port > 65535)
		return bad_key("agent.tcp_port", s->tcp_port, "not a port (0 to 65535)");
	return 0;
}

static int stop_pipe[2] = { -1, -1 };

static void on_term(int sig)
{
	(void)sig;
	if (write(stop_pipe[1], "x", 1) < 0) {
		/* nothing to do: the pipe holds a byte already */
	}
}

/* SIGTERM/SIGINT: stop accepting, let running operations end (their
 * clients wait for them), then leave. */
static int catch_term(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return 0;
}

static void shut_down(const struct settings *s, int lfd, int tfd, struct conf *conf)
{
	close(lfd);
	if (tfd >= 0)
		close(tfd);
	unlink(s->socket);
	agent_log(0, "ckptd %d stopping", getpid());
	for (int i = 0; i < 600; i++) {
		if (!slots_in_use())
			break;
		usleep(100000);
	}
	jobs_free_all();
	conf_free(conf);
}

/* The connection limits (slots.c) and the request deadline (conn.c). */
static int load_conn_limits(const struct conf *conf)
{
	uint64_t per_uid, timeout_s;
	if (conf_get_u64(conf, "agent.max_conns_per_uid", AGENT_CONNS_PER_UID, &per_uid) ||
	    conf_get_u64(conf, "agent.request_timeout_s", AGENT_REQ_TIMEOUT_S, &timeout_s))
		return -1;
	if (!per_uid)
		return bad_key("agent.max_conns_per_uid", per_uid, "must be over 0");
	if (!timeout_s || timeout_s > 86400)
		return bad_key("agent.request_timeout_s", timeout_s, "must be from 1 to 86400");
	/* Past the users' share (slots.c) the share binds first; clamped to an int. */
	slots_set_per_uid(per_uid > AGENT_MAX_CONNS ? AGENT_MAX_CONNS : (int)per_uid);
	agent.request_timeout_ns = timeout_s * 1000000000ULL;
	return 0;
}

/* The periodic checkpoints' unit, the ended jobs' records, the limits. */
static int load_agent_keys(const struct conf *conf)
{
	if (conf_get_u64(conf, "agent.interval_unit_s", 60, &agent.interval_unit_s) ||
	    conf_get_u64(conf, "retention.ended_keep_s", 7 * 24 * 3600, &agent.ended_keep_s))
		return -1;
	if (!agent.interval_unit_s)
		return bad_key("agent.interval_unit_s", 0, "must be over 0 (seconds in one unit of "
							   "--checkpoint-interval)");
	return load_conn_limits(conf);
}

static int self_exe(void)
{
	ssize_t n = readlink("/proc/self/exe", agent.exe, sizeof(agent.exe) - 1);
	if (n <= 0)
		return -1;
	agent.exe[n] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	struct settings s = { 0 };
	struct conf *conf = NULL;
	if (argc > 1 && !strcmp(argv[1], "--worker"))
		return worker_main(argc, argv);
	if (load_settings(argc, argv, &s, &conf) || self_exe())
		return 1;
	if (geteuid()) {
		fprintf(stderr, "ckptd: must run as root\n");
		return 1;
	}
	snprintf(agent.run_dir, sizeof(agent.run_dir), "%s", s.run_dir);
	snprintf(agent.storage_base, sizeof(agent.storage_base), "%s",
		 conf_get(conf, "storage.base", "/var/lib/ckpt"));
	snprintf(agent.storage_local, sizeof(agent.storage_local), "%s",
		 conf_get(conf, "storage.local", ""));
	if (load_agent_keys(conf))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (catch_term())
		return 1;
	if (make_dirs(agent.run_dir))
		return 1;
	int lfd = listen_unix(s.socket);
	int tfd = s.tcp_port ? tcp_listen((int)s.tcp_port) : -1;
	if (lfd < 0 || (s.tcp_port && tfd < 0))
		return 1;
	if (!s.foreground) {
		if (daemon(0, 0))
			return 1;
		agent_log_to_syslog();
	}
	agent.start_ns = agent_now_ns();
	ops_recover();
	jobs_load();
	if (periodic_start())
		return 1;
	agent_log(0, "ckptd %d serving %s%s", getpid(), s.socket, tfd >= 0 ? " and TCP" : "");
	int ret = accept_loop(lfd, tfd, stop_pipe[0]);
	shut_down(&s, lfd, tfd, conf);
	return ret;
}
