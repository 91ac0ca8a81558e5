/*
 * ids.c: context ids.  The master counts up; any other context that starts
 * children asks the master for a block of ids (ALLOCATE_ID) and hands them
 * out until the block runs dry.
 */
#include <errno.h>

#include "context/calls.h"

#define BLOCK 1000

static void allocate_cb(void *arg, struct mg_msg *m)
{
	struct mg_router *r = arg;
	struct mg_msg *reply;
	uint32_t lo;

	pthread_mutex_lock(&r->lock);
	if (r->id_next < 1)
		r->id_next = 1;
	lo = r->id_next;
	if (UINT32_MAX - lo - 1 < BLOCK) {
		pthread_mutex_unlock(&r->lock);
		mg__router_send_dead(r, &m->hdr, MG_ELIMIT, "context ids exhausted");
		mg_msg_free(m);
		return;
	}
	r->id_next += BLOCK;
	pthread_mutex_unlock(&r->lock);
	/* Only the way to the asker may announce these ids later. */
	if (mg__router_delegate(r, lo, lo + BLOCK, m->hdr.src_id) != 0) {
		mg__router_send_dead(r, &m->hdr, -ENOMEM, "out of memory recording ids");
		mg_msg_free(m);
		return;
	}
	if (m->hdr.reply_to != 0 &&
	    mg_msg_pack(&reply, "(uu)", (uint64_t)lo, (uint64_t)(lo + BLOCK)) == 0)
		mg_router_send(r, m->hdr.src_id, m->hdr.reply_to, reply);
	mg__debug("%s: gave ids %u..%u to context %u", r->name, lo, lo + BLOCK - 1, m->hdr.src_id);
	mg_msg_free(m);
}

int mg__ids_listen(struct mg_router *r)
{
	return mg_router_add_handler(r, MG_HANDLE_ALLOCATE_ID, MG_POLICY_ANY, allocate_cb, r, NULL);
}

/* Asks the master for a block.  Thread: not the broker. */
static int ask_master(struct mg_router *r)
{
	struct mg_receiver *rx;
	struct mg_msg *m;
	uint64_t lo, hi;
	int rc;

	if ((rc = mg_receiver_new(r, 0, MG_POLICY_ANY, &rx)) != 0)
		return rc;
	if ((rc = mg_msg_new(&m)) != 0)
		goto out;
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	if ((rc = mg_router_send(r, 0, MG_HANDLE_ALLOCATE_ID, m)) != 0)
		goto out;
	if ((rc = mg_receiver_get(rx, 30000, &m)) != 0)
		goto out;
	rc = mg_msg_read(m, "(uu)", &lo, &hi);
	mg_msg_free(m);
	if (rc == 0 && (lo == 0 || hi <= lo || hi > UINT32_MAX))
		rc = MG_EDECODE;
	/* These are this context's to hand out: no child may announce one. */
	if (rc == 0)
		rc = mg__router_delegate(r, (uint32_t)lo, (uint32_t)hi, r->id);
	if (rc == 0) {
		pthread_mutex_lock(&r->lock);
		r->id_next = (uint32_t)lo;
		r->id_end = (uint32_t)hi;
		pthread_mutex_unlock(&r->lock);
	}
out:
	mg_receiver_free(rx);
	return rc;
}

int mg__context_alloc_id(struct mg_router *r, uint32_t *idp)
{
	int rc;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		if (r->id == 0) {
			/* The master hands out ids from its own counter. */
			if (r->id_next < 1)
				r->id_next = 1;
			if (r->id_next == UINT32_MAX) {
				pthread_mutex_unlock(&r->lock);
				return MG_ELIMIT;
			}
			*idp = r->id_next++;
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		if (r->id_next < r->id_end) {
			*idp = r->id_next++;
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		pthread_mutex_unlock(&r->lock);
		if ((rc = ask_master(r)) != 0)
			return rc;
	}
}
