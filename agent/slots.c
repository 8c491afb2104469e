/*
 * slots: who may hold one of ckptd's connections.  A connection holds a
 * thread and an fd until it closes, so an idle one costs as much as a
 * busy one: with only a global cap, one user's idle connections locked
 * root and every other user out (security attack 8).  So, checked at
 * accept (unix: the uid is known from SO_PEERCRED) and again when a TCP
 * connection authenticates (its uid comes from munge):
 *   - each uid but root holds at most agent.max_conns_per_uid;
 *   - users, all together, leave AGENT_ROOT_RESERVE slots free: root (the
 *     Slurm plugin, the administrator) may take any free one, so root is
 *     never starved by users;
 *   - TCP connections not yet authenticated share AGENT_MAX_UNAUTH of the
 *     users' slots: without a munge credential nobody can take more.
 * How long a connection may sit idle is conn.c's request deadline.
 * A refusal is answered with its reason and logged once per burst, since
 * any local user can cause any number of them.
 */
#include <errno.h>
#include <stdio.h>

#include "agent.h"

_Static_assert(AGENT_ROOT_RESERVE + AGENT_MAX_UNAUTH < AGENT_MAX_CONNS,
	       "users need slots of their own");

/* Connections of one uid; n == 0: a free entry.  Only users' are kept,
 * and fewer than AGENT_MAX_CONNS - AGENT_ROOT_RESERVE of them are ever
 * open: a uid taking a slot always finds its entry or a free one. */
struct uid_conns {
	uid_t uid;
	int n;
};

static struct {
	pthread_mutex_t lock;
	int total, users, unauth; /* users: authenticated, uid != 0 */
	int per_uid;
	struct uid_conns uids[AGENT_MAX_CONNS];
} slots = { .lock = PTHREAD_MUTEX_INITIALIZER, .per_uid = AGENT_CONNS_PER_UID };

static struct log_burst refusals = LOG_BURST_INIT;

void slots_set_per_uid(int max)
{
	slots.per_uid = max;
}

static enum conn_slot slot_kind(const struct conn *c)
{
	if (!c->authed)
		return SLOT_UNAUTH;
	return c->peer.uid == 0 ? SLOT_ROOT : SLOT_USER;
}

/* uid's entry; with create, a free one when it has none. */
static struct uid_conns *uid_entry(uid_t uid, int create)
{
	struct uid_conns *free_entry = NULL;
	for (int i = 0; i < AGENT_MAX_CONNS; i++) {
		struct uid_conns *e = &slots.uids[i];
		if (e->n && e->uid == uid)
			return e;
		if (!e->n && !free_entry)
			free_entry = e;
	}
	if (create && free_entry)
		free_entry->uid = uid;
	return create ? free_entry : NULL;
}

/* Why a connection of this kind cannot have a slot now; NULL: it can. */
static const char *refusal_locked(enum conn_slot kind, uid_t uid, char *why, size_t len)
{
	char who[32] = "unauthenticated tcp client";
	struct uid_conns *e = kind == SLOT_USER ? uid_entry(uid, 0) : NULL;
	if (kind != SLOT_UNAUTH)
		snprintf(who, sizeof(who), "uid %u", uid);
	if (slots.total >= AGENT_MAX_CONNS)
		snprintf(why, len, "%s: too many connections to ckptd (%d)", who, AGENT_MAX_CONNS);
	else if (kind == SLOT_ROOT)
		return NULL;
	else if (slots.users + slots.unauth >= AGENT_MAX_CONNS - AGENT_ROOT_RESERVE)
		snprintf(why, len, "%s: too many connections of users to ckptd (%d)", who,
			 AGENT_MAX_CONNS - AGENT_ROOT_RESERVE);
	else if (kind == SLOT_UNAUTH && slots.unauth >= AGENT_MAX_UNAUTH)
		snprintf(why, len, "%s: too many unauthenticated connections to ckptd (%d)", who,
			 AGENT_MAX_UNAUTH);
	else if (e && e->n >= slots.per_uid)
		snprintf(why, len, "%s: too many connections to ckptd (%d)", who, slots.per_uid);
	else
		return NULL;
	return why;
}

static void count_locked(enum conn_slot kind, uid_t uid, int delta)
{
	slots.total += delta;
	if (kind == SLOT_UNAUTH)
		slots.unauth += delta;
	if (kind == SLOT_USER) {
		slots.users += delta;
		uid_entry(uid, 1)->n += delta;
	}
}

int slots_take(struct conn *c, char *why, size_t len)
{
	enum conn_slot kind = slot_kind(c);
	pthread_mutex_lock(&slots.lock);
	const char *refused = refusal_locked(kind, c->peer.uid, why, len);
	if (!refused) {
		count_locked(kind, c->peer.uid, 1);
		c->slot = kind;
	}
	pthread_mutex_unlock(&slots.lock);
	if (!refused)
		return 0;
	agent_log_burst(&refusals, "connection refused: %s", why);
	return -EAGAIN;
}

void slots_give_back(struct conn *c)
{
	if (c->slot == SLOT_NONE)
		return;
	pthread_mutex_lock(&slots.lock);
	count_locked(c->slot, c->peer.uid, -1);
	pthread_mutex_unlock(&slots.lock);
	c->slot = SLOT_NONE;
}

int slots_in_use(void)
{
	pthread_mutex_lock(&slots.lock);
	int n = slots.total;
	pthread_mutex_unlock(&slots.lock);
	return n;
}
