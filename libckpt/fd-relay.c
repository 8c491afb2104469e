/*
 * fd-relay: files made by the first of their holders once the tree
 * exists, passed to the others on a socket; see fd-relay.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-relay.h"
#include "log.h"

int relay_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = sizeof(sa);
	struct timeval tv = { 60, 0 }; /* the first holder failed: give up */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) ||
	    connect(fd, (struct sockaddr *)&sa, len) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		int err = errno;
		pr_err("cannot make the socket that passes a file among its holders: %s",
		       strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	return fd;
}

/* How many processes of the restore hold file `id`, and how many of
 * them come before task `idx`. */
static size_t holders(const struct restore_files *rf, size_t idx, uint32_t id, size_t *before)
{
	size_t n = 0;
	*before = 0;
	for (size_t t = 0; t < rf->nr_tasks; t++)
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			if (rf->tasks[t].fds[i]->file_id == id) {
				n++;
				*before += t < idx;
				break;
			}
	return n;
}

static int send_fd(int sock, int fd)
{
	char data = 'p', buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &data, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char data, buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)
	};
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -(errno ? errno : EIO);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd;
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EIO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* The file of fd `sock`'s description in task `idx`: made here by its
 * first holder and passed to the others, received by them. */
static int get_file(const struct restore_files *rf, size_t idx, int sock, const FileEntry *e,
		    relay_open_fn open)
{
	size_t before, n = holders(rf, idx, e->id, &before);
	if (before)
		return recv_fd(sock);
	int fd = open(e);
	int ret = fd < 0 ? fd : 0;
	for (size_t i = 1; !ret && i < n; i++)
		ret = send_fd(sock, fd);
	if (ret && fd >= 0)
		close(fd);
	return ret ? ret : fd;
}

/* The owner and signal files_install gave the stand-in. */
static int set_fown(const FileEntry *e, int fd)
{
	struct f_owner_ex own = { (int)e->fown_type, (pid_t)e->fown_pid };
	if ((e->has_fown_sig && fcntl(fd, F_SETSIG, (int)e->fown_sig)) ||
	    (e->has_fown_pid && fcntl(fd, F_SETOWN_EX, &own)))
		return -errno;
	return 0;
}

int relay_install(const struct restore_files *rf, size_t idx, size_t i, const FileEntry *e,
		  relay_open_fn open)
{
	const struct task_fds *tf = &rf->tasks[idx];
	const FdEntry *fe = tf->fds[i];
	int fd = -1;
	for (size_t j = 0; j < i && fd < 0; j++)
		if (tf->fds[j]->file_id == fe->file_id)
			fd = fcntl((int)tf->fds[j]->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		fd = get_file(rf, idx, (int)fe->fd, e, open);
	int ret = fd < 0 ? fd : dup3(fd, (int)fe->fd, fe->cloexec ? O_CLOEXEC : 0) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return ret ? ret : set_fown(e, (int)fe->fd);
}
