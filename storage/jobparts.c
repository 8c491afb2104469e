/*
 * jobparts: the commit of a multi-node set (docs/coordinator.md).  Each
 * node's ckptd wrote its part, BASE/JOB/SEQ/nodes/NODE/, a whole set with
 * its own manifest, and told the coordinator that manifest's crc32c; one
 * node then commits the set here: every part's manifest must be there
 * with that crc (a part that changed or went missing fails the set), the
 * set's own manifest names the parts and the ranks, and `latest` moves.
 * Until that manifest exists BASE/JOB/SEQ is no checkpoint: a restore,
 * `list` and retention see nothing, the collector removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "manifest.pb-c.h"

#define MANIFEST_MAX (16 << 20)

/* crc32c of the manifest file but its last 4 bytes: its trailer's crc of
 * every byte before it.  (The crc32c of a whole message image, its own
 * crc included, is the same for every file: CRC's residue.) */
static int crc_of_fd(int fd, uint32_t *crc)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 4 || st.st_size > MANIFEST_MAX)
		return -EBADMSG;
	char *buf = malloc((size_t)st.st_size);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n == (ssize_t)st.st_size)
		*crc = crc32c(0, buf, (size_t)n - 4);
	free(buf);
	return n == (ssize_t)st.st_size ? 0 : -EIO;
}

int img_set_manifest_crc(struct img_set *set, uint32_t *crc)
{
	int fd = openat(set->dirfd, MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		ret = -errno;
		st_err("%s/%s: %s", set->dir, MANIFEST_NAME, strerror(-ret));
		return ret;
	}
	ret = crc_of_fd(fd, crc);
	close(fd);
	return ret;
}

/* SET/nodes/NODE/manifest, reached without symlinks, has crc `want`. */
static int check_part(int setfd, const char *dir, const struct set_part *p)
{
	char path[NAME_MAX * 2 + 32];
	uint32_t crc;
	int fd, ret;

	if (!set_valid_name(p->node) || p->node[0] == '.') {
		st_err("%s: part '%.64s': not a valid node name", dir, p->node);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "nodes/%s/%s", p->node, MANIFEST_NAME);
	fd = openat(setfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		st_err("%s/%s: part of node %s: %s", dir, path, p->node, strerror(-ret));
		return ret;
	}
	ret = crc_of_fd(fd, &crc);
	close(fd);
	if (!ret && crc != p->manifest_crc) {
		st_err("%s/%s: crc %08x, node %s dumped %08x: the part changed", dir, path, crc,
		       p->node, p->manifest_crc);
		ret = -EBADMSG;
	}
	return ret;
}

static int write_parts(struct img_set *set, const struct set_part *parts, size_t nr)
{
	ManifestPart *mp = calloc(nr, sizeof(*mp));
	ManifestPart **pp = calloc(nr, sizeof(*pp));
	ManifestRank *mr = calloc(nr, sizeof(*mr));
	ManifestRank **rp = calloc(nr, sizeof(*rp));
	int ret = -ENOMEM;

	if (mp && pp && mr && rp) {
		for (size_t i = 0; i < nr; i++) {
			manifest_part__init(&mp[i]);
			mp[i].node = (char *)parts[i].node;
			mp[i].manifest_crc = parts[i].manifest_crc;
			mp[i].has_batch = 1;
			mp[i].batch = parts[i].batch;
			mp[i].address = (char *)parts[i].address;
			pp[i] = &mp[i];
			manifest_rank__init(&mr[i]);
			mr[i].rank = parts[i].rank;
			mr[i].host = (char *)parts[i].node;
			mr[i].has_pid = 1;
			mr[i].pid = parts[i].root_pid;
			rp[i] = &mr[i];
		}
		ret = img_set_commit_parts(set, pp, nr, rp, nr);
	}
	free(mp);
	free(pp);
	free(mr);
	free(rp);
	return ret;
}

int imgset_commit_parts(const char *base, const char *job, uint64_t seq, int64_t uid,
			const struct set_part *parts, size_t nr)
{
	char dir[PATH_MAX];
	struct img_set *set;
	int ret;

	if (!nr || nr > MAX_SET_PARTS || !set_valid_name(job) || job[0] == '.' || !seq)
		return -EINVAL;
	for (size_t i = 0; i < nr; i++)
		for (size_t k = 0; k < i; k++)
			if (!strcmp(parts[i].node, parts[k].node)) {
				st_err("job %s: set %llu: node %.64s named twice", job,
				       (unsigned long long)seq, parts[i].node);
				return -EINVAL;
			}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%llu", base, job, (unsigned long long)seq) >=
	    sizeof(dir))
		return -ENAMETOOLONG;
	/* The set's directory exists (the parts are in it): opened, locked;
	 * never made here. */
	int fd = dir_open_nofollow(dir, O_RDONLY);
	if (fd < 0) {
		st_err("%s: %s", dir, strerror(-fd));
		return fd;
	}
	/* A committed set stays what it is. */
	if (!faccessat(fd, MANIFEST_NAME, F_OK, AT_SYMLINK_NOFOLLOW)) {
		st_err("%s: committed already", dir);
		close(fd);
		return -EEXIST;
	}
	close(fd);
	ret = set_create_with(dir, 0, NULL, &set);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < nr; i++)
		ret = check_part(set->dirfd, dir, &parts[i]);
	if (!ret && (ret = img_set_set_job(set, job, seq)) == 0 && uid >= 0)
		img_set_set_owner(set, (uid_t)uid);
	if (!ret)
		ret = write_parts(set, parts, nr);
	img_set_close(set);
	return ret ? ret : imgset_set_latest(base, job, seq);
}
