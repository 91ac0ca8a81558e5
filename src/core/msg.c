/*
 * msg.c: the message container: refcount, header fields and payload.  The
 * MessagePack side (append/read) lives in router/msg_fmt.c.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/core.h"

/* Payloads are capped by the u32 length field of the frame. */
#define PAYLOAD_MAX UINT32_MAX

struct mg_strcopy {
	struct mg_strcopy *next;
	char text[];
};

/*
 * Payload storage: the heap for small payloads; from MG_BIGBUF_MIN on,
 * storage from bigbuf.c, which costs few or no page faults to fill and
 * grows without copying.  A 64 MiB payload in fresh heap memory spends
 * longer faulting its pages in than copying into them.
 */
static int payload_grow(struct mg_buf *b, size_t need, size_t cap)
{
	struct mg_msg *m = (struct mg_msg *)((char *)b - offsetof(struct mg_msg, payload));
	uint8_t *p;
	size_t ncap;
	int r;

	if (m->big)
		return mg__bigbuf_grow(&b->data, &b->cap, need);
	if (need < MG_BIGBUF_MIN) {
		p = b->data == NULL ? mg__chunk_alloc(cap) : mg__realloc(b->data, cap);
		if (p == NULL)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
		return 0;
	}
	if ((r = mg__bigbuf_get(need, &p, &ncap)) != 0)
		return r;
	if (b->len > 0)
		memcpy(p, b->data, b->len);
	mg__chunk_free(b->data, b->cap);
	b->data = p;
	b->cap = ncap;
	m->big = true;
	return 0;
}

static void payload_release(struct mg_buf *b)
{
	struct mg_msg *m = (struct mg_msg *)((char *)b - offsetof(struct mg_msg, payload));

	if (m->big)
		mg__bigbuf_put(b->data, b->cap);
	else
		mg__chunk_free(b->data, b->cap);
	m->big = false;
}

static const struct mg_buf_store payload_store = {payload_grow, payload_release};

/* A view's payload is borrowed from the viewed message: growing it copies
 * the bytes into storage of its own first. */
static int view_grow(struct mg_buf *b, size_t need, size_t cap)
{
	struct mg_msg *m = (struct mg_msg *)((char *)b - offsetof(struct mg_msg, payload));
	struct mg_buf old = *b;
	int r;

	b->data = NULL;
	b->len = b->cap = 0;
	b->store = &payload_store;
	if ((r = payload_grow(b, need, cap)) != 0) {
		*b = old;
		return r;
	}
	if (old.len > 0)
		memcpy(b->data, old.data, old.len);
	b->len = old.len;
	mg_msg_free(m->viewed);
	m->viewed = NULL;
	return 0;
}

static void view_release(struct mg_buf *b)
{
	struct mg_msg *m = (struct mg_msg *)((char *)b - offsetof(struct mg_msg, payload));

	mg_msg_free(m->viewed);
	m->viewed = NULL;
}

static const struct mg_buf_store view_store = {view_grow, view_release};

static struct mg_msg *msg_alloc(void)
{
	struct mg_msg *m = mg__calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	atomic_init(&m->refs, 1);
	mg__buf_init(&m->payload, PAYLOAD_MAX);
	m->payload.store = &payload_store;
	return m;
}

int mg_msg_new(struct mg_msg **msgp)
{
	struct mg_msg *m = msg_alloc();

	if (m == NULL)
		return -ENOMEM;
	*msgp = m;
	return 0;
}

int mg_msg_new_size(size_t len, struct mg_msg **msgp)
{
	struct mg_msg *m;
	int r;

	if (len > PAYLOAD_MAX)
		return MG_ETOOBIG;
	if ((m = msg_alloc()) == NULL)
		return -ENOMEM;
	if ((r = mg__buf_reserve(&m->payload, len)) != 0) {
		mg_msg_free(m);
		return r;
	}
	m->payload.len = len;
	m->hdr.flags = MG_ENC_RAW;
	m->hdr.len = (uint32_t)len;
	*msgp = m;
	return 0;
}

int mg_msg_new_raw(const void *data, size_t len, struct mg_msg **msgp)
{
	struct mg_msg *m;
	int r;

	if ((r = mg_msg_new_size(len, &m)) != 0)
		return r;
	if (len)
		memcpy(m->payload.data, data, len);
	*msgp = m;
	return 0;
}

int mg__msg_new_view(struct mg_msg *parent, const uint8_t *p, size_t len, struct mg_msg **msgp)
{
	struct mg_msg *m = msg_alloc();

	if (m == NULL)
		return -ENOMEM;
	m->viewed = mg_msg_ref(parent);
	m->payload.store = &view_store;
	m->payload.data = (uint8_t *)p;
	m->payload.len = m->payload.cap = len;
	m->hdr.len = (uint32_t)len;
	*msgp = m;
	return 0;
}

int mg__msg_adopt(uint8_t *data, size_t len, struct mg_msg **msgp)
{
	struct mg_msg *m = msg_alloc();

	if (m == NULL) {
		mg__free(data);
		return -ENOMEM;
	}
	m->payload.data = data;
	m->payload.len = m->payload.cap = len;
	m->hdr.len = (uint32_t)len;
	*msgp = m;
	return 0;
}

struct mg_msg *mg_msg_ref(struct mg_msg *msg)
{
	atomic_fetch_add_explicit(&msg->refs, 1, memory_order_relaxed);
	return msg;
}

void mg_msg_free(struct mg_msg *msg)
{
	struct mg_strcopy *c, *next;

	if (msg == NULL || atomic_fetch_sub_explicit(&msg->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (c = msg->copies; c != NULL; c = next) {
		next = c->next;
		if (msg->wipe)
			explicit_bzero(c->text, strlen(c->text));
		mg__free(c);
	}
	if (msg->wipe && msg->payload.data != NULL && msg->viewed == NULL)
		explicit_bzero(msg->payload.data, msg->payload.cap);
	mg__buf_fini(&msg->payload);
	mg__free(msg);
}

/* Keeps a NUL-terminated copy of p[0..n) alive as long as the message. */
char *mg__msg_strcopy(struct mg_msg *msg, const char *p, size_t n)
{
	struct mg_strcopy *c = mg__malloc(sizeof(*c) + n + 1);

	if (c == NULL)
		return NULL;
	memcpy(c->text, p, n);
	c->text[n] = '\0';
	c->next = msg->copies;
	msg->copies = c;
	return c->text;
}

const void *mg_msg_data(const struct mg_msg *msg)
{
	return msg->payload.data;
}

void *mg_msg_data_mut(struct mg_msg *msg)
{
	return msg->payload.data;
}

size_t mg_msg_len(const struct mg_msg *msg)
{
	return msg->payload.len;
}

uint32_t mg_msg_dst(const struct mg_msg *msg)
{
	return msg->hdr.dst_id;
}

uint32_t mg_msg_src(const struct mg_msg *msg)
{
	return msg->hdr.src_id;
}

uint32_t mg_msg_auth(const struct mg_msg *msg)
{
	return msg->hdr.auth_id;
}

uint32_t mg_msg_handle(const struct mg_msg *msg)
{
	return msg->hdr.handle;
}

uint32_t mg_msg_reply_to(const struct mg_msg *msg)
{
	return msg->hdr.reply_to;
}

void mg_msg_set_reply_to(struct mg_msg *msg, uint32_t handle)
{
	msg->hdr.reply_to = handle;
}

bool mg_msg_is_dead(const struct mg_msg *msg)
{
	return msg->hdr.reply_to == MG_HANDLE_IS_DEAD;
}

void mg_msg_rewind(struct mg_msg *msg)
{
	msg->rpos = 0;
}

bool mg_msg_at_end(const struct mg_msg *msg)
{
	return msg->rpos >= msg->payload.len;
}
