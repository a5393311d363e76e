// SPDX-License-Identifier: GPL-2.0
/*
 * vmci_test: a guest actor for vmci-hostpeer's guest-kernel tests. It uses
 * the guest kernel's own VMCI API (exported by vmw_vmci) and is driven from
 * user space through /proc/vmci-test: write one command line, then read the
 * result on the same open file, e.g.
 *
 *   exec 3<>/proc/vmci-test; echo "dg-create 7000" >&3; cat <&3; exec 3<&-
 *
 * The first result line is "ok ..." or "error ..."; some commands add lines.
 * Handles are written CID:RID. Commands:
 *
 *   cid                                  ok CID (vmci_get_context_id)
 *   dg-create RID|any [delayed]          ok CID:RID   records what arrives
 *   dg-destroy RID                       ok
 *   dg-send SRC_RID DST TEXT             ok BYTES     (vmci_datagram_send)
 *   dg-send-size SRC_RID DST SIZE SEED   ok BYTES     SIZE bytes of the stream SEED
 *   dg-recv RID [MIN [TIMEOUT_MS]]       ok COUNT, then one line per datagram:
 *        datagram SRC SIZE FNV32 TEXT    (waits for MIN; takes them)
 *   event-subscribe NAME                 ok SUBID (CTX_ID_UPDATE CTX_REMOVED
 *                                        QP_RESUMED QP_PEER_ATTACH QP_PEER_DETACH
 *                                        or a number)
 *   event-unsubscribe SUBID              ok
 *   events [MIN [TIMEOUT_MS]]            ok COUNT, then lines
 *        event SUBID NAME CID | event SUBID NAME CID:RID PEER
 *   db-create [RID] [delayed]            ok CID:RID
 *   db-destroy HANDLE                    ok
 *   db-notify HANDLE                     ok RESULT
 *   db-count HANDLE [MIN [TIMEOUT_MS]]   ok CALLBACKS
 *   qp-alloc PEER|any PRODUCE CONSUME [HANDLE]   ok CID:RID
 *   qp-write HANDLE SIZE SEED [TIMEOUT_MS]       ok BYTES FNV32
 *   qp-read HANDLE SIZE SEED [TIMEOUT_MS]        ok BYTES FNV32 (checked)
 *   qp-state HANDLE                      ok PRODUCE_FREE PRODUCE_READY CONSUME_FREE CONSUME_READY
 *   qp-detach HANDLE                     ok
 *
 * The stream SEED is tests/support/byte_stream.h's (SplitMix64, each word's
 * bytes in little-endian order), so host programs check what the guest
 * wrote and write what it checks. A failed VMCI call answers
 * "error vmci RESULT"; bad input answers "error ..." and changes nothing.
 * Everything is bounded (slots, recorded datagrams and events), and
 * callbacks, which may run in atomic context, only touch spinlocked records.
 */
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/vmw_vmci_api.h>
#include <linux/vmw_vmci_defs.h>
#include <linux/wait.h>

#define RESULT_SIZE 16384
#define COMMAND_SIZE 512
#define MAX_DG_HANDLES 16
#define MAX_DG_RECORDS 32
#define DG_HEAD 48
#define MAX_EVENTS 64
#define MAX_SUBS 16
#define MAX_DOORBELLS 16
#define MAX_QPS 8
#define CHUNK (64 * 1024)
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_TIMEOUT_MS 600000

/* The test stream: tests/support/byte_stream.h. */
struct byte_stream {
	u64 state;
	u64 word;
	unsigned int used;
};

static void stream_init(struct byte_stream *s, u64 seed)
{
	s->state = seed;
	s->word = 0;
	s->used = 8;
}

static void stream_fill(struct byte_stream *s, u8 *out, size_t n)
{
	while (n > 0) {
		size_t step;

		if (s->used == 8) {
			u64 z = (s->state += 0x9E3779B97F4A7C15ull);

			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
			s->word = cpu_to_le64(z ^ (z >> 31));
			s->used = 0;
		}
		step = min_t(size_t, n, 8 - s->used);
		memcpy(out, (u8 *)&s->word + s->used, step);
		s->used += step;
		out += step;
		n -= step;
	}
}

static u32 fnv32(u32 h, const u8 *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

#define FNV32_START 2166136261u

/* State. Slots change under table_lock (commands); records under rec_lock. */
static DEFINE_MUTEX(table_lock);
static DEFINE_SPINLOCK(rec_lock);
static DECLARE_WAIT_QUEUE_HEAD(arrivals);

struct dg_record {
	struct vmci_handle src;
	u32 size;
	u32 sum;
	char head[DG_HEAD + 1];
};

struct dg_slot {
	bool used;
	struct vmci_handle handle;
	/* Under rec_lock: */
	struct dg_record ring[MAX_DG_RECORDS];
	unsigned int first, count;
	u64 dropped;
};

struct event_record {
	u32 sub;
	u32 event;
	struct vmci_event_payld_qp qp; /* or the context id in qp.handle.context */
};

struct db_slot {
	bool used;
	struct vmci_handle handle;
	atomic_t calls;
};

struct qp_slot {
	bool used;
	bool busy; /* a qp-write or qp-read runs: no detach */
	struct vmci_handle handle;
	struct vmci_qp *qp;
};

static struct dg_slot dgs[MAX_DG_HANDLES];
static struct event_record events[MAX_EVENTS];
static unsigned int events_first, events_count;
static u64 events_dropped;
static u32 subs[MAX_SUBS];
static bool subs_used[MAX_SUBS];
static struct db_slot dbs[MAX_DOORBELLS];
static struct qp_slot qps[MAX_QPS];

/* One open file: the result of its last command. */
struct session {
	char *result;
	size_t len;
};

static void out(struct session *s, const char *fmt, ...) __printf(2, 3);
static void out(struct session *s, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	s->len += vscnprintf(s->result + s->len, RESULT_SIZE - s->len, fmt, args);
	va_end(args);
}

static const char *const event_names[VMCI_EVENT_MAX] = {
	"CTX_ID_UPDATE", "CTX_REMOVED", "QP_RESUMED", "QP_PEER_ATTACH",
	"QP_PEER_DETACH", "MEM_ACCESS_ON", "MEM_ACCESS_OFF",
};

/* Callbacks (any context). */

static int dg_received(void *client_data, struct vmci_datagram *dg)
{
	struct dg_slot *slot = client_data;
	struct dg_record *r;
	const u8 *payload = VMCI_DG_PAYLOAD(dg);
	unsigned long flags;
	size_t i, head = min_t(size_t, dg->payload_size, DG_HEAD);

	spin_lock_irqsave(&rec_lock, flags);
	if (slot->count == MAX_DG_RECORDS) {
		slot->dropped++;
	} else {
		r = &slot->ring[(slot->first + slot->count) % MAX_DG_RECORDS];
		r->src = dg->src;
		r->size = dg->payload_size;
		r->sum = fnv32(FNV32_START, payload, dg->payload_size);
		for (i = 0; i < head; i++)
			r->head[i] = payload[i] > 0x20 && payload[i] < 0x7f ? payload[i] : '.';
		r->head[head] = '\0';
		slot->count++;
	}
	spin_unlock_irqrestore(&rec_lock, flags);
	wake_up_all(&arrivals);
	return VMCI_SUCCESS;
}

static void event_received(u32 sub, const struct vmci_event_data *ed, void *client_data)
{
	struct event_record *r;
	unsigned long flags;

	spin_lock_irqsave(&rec_lock, flags);
	if (events_count == MAX_EVENTS) {
		events_dropped++;
	} else {
		r = &events[(events_first + events_count) % MAX_EVENTS];
		memset(r, 0, sizeof(*r));
		r->sub = sub;
		r->event = ed->event;
		if (ed->event == VMCI_EVENT_QP_PEER_ATTACH || ed->event == VMCI_EVENT_QP_PEER_DETACH)
			r->qp = *(const struct vmci_event_payld_qp *)vmci_event_data_const_payload(ed);
		else
			r->qp.handle.context = ((const struct vmci_event_payld_ctx *)
						vmci_event_data_const_payload(ed))->context_id;
		events_count++;
	}
	spin_unlock_irqrestore(&rec_lock, flags);
	wake_up_all(&arrivals);
}

static void doorbell_rung(void *client_data)
{
	struct db_slot *slot = client_data;

	atomic_inc(&slot->calls);
	wake_up_all(&arrivals);
}

/* Parsing. Each takes the next word of *line; NULL or false when missing or bad. */

static char *word(char **line)
{
	char *w;

	do {
		w = strsep(line, " \t");
	} while (w && !*w);
	return w;
}

static bool parse_u32(char **line, u32 *v)
{
	char *w = word(line);

	return w && !kstrtou32(w, 0, v);
}

static bool parse_u64(char **line, u64 *v)
{
	char *w = word(line);

	return w && !kstrtou64(w, 0, v);
}

/* Optional: *v keeps its default when the word is missing. */
static bool parse_opt_u32(char **line, u32 *v)
{
	char *w = word(line);

	return !w || !kstrtou32(w, 0, v);
}

static bool parse_id(char **line, u32 *v)
{
	char *w = word(line);

	if (w && !strcmp(w, "any")) {
		*v = VMCI_INVALID_ID;
		return true;
	}
	return w && !kstrtou32(w, 0, v);
}

static bool parse_handle(char **line, struct vmci_handle *h)
{
	char *w = word(line), *colon;

	if (!w)
		return false;
	colon = strchr(w, ':');
	if (!colon)
		return false;
	*colon = '\0';
	return !kstrtou32(w, 0, &h->context) && !kstrtou32(colon + 1, 0, &h->resource);
}

static bool same(struct vmci_handle a, struct vmci_handle b)
{
	return a.context == b.context && a.resource == b.resource;
}

static long timeout_jiffies(u32 ms)
{
	return msecs_to_jiffies(min_t(u32, ms, MAX_TIMEOUT_MS));
}

/* Commands. Each writes its answer with out(); the caller holds nothing. */

static void vmci_error(struct session *s, const char *what, long result)
{
	out(s, "error vmci %ld (%s)\n", result, what);
}

static struct dg_slot *dg_find(u32 rid)
{
	int i;

	for (i = 0; i < MAX_DG_HANDLES; i++)
		if (dgs[i].used && dgs[i].handle.resource == rid)
			return &dgs[i];
	return NULL;
}

static void cmd_dg_create(struct session *s, char *line)
{
	u32 rid, flags = 0;
	char *opt;
	struct dg_slot *slot = NULL;
	int i, result;

	if (!parse_id(&line, &rid))
		return out(s, "error usage: dg-create RID|any [delayed]\n");
	opt = word(&line);
	if (opt && !strcmp(opt, "delayed"))
		flags = VMCI_FLAG_DG_DELAYED_CB;
	else if (opt)
		return out(s, "error unknown option %s\n", opt);
	mutex_lock(&table_lock);
	for (i = 0; i < MAX_DG_HANDLES && !slot; i++)
		if (!dgs[i].used)
			slot = &dgs[i];
	if (!slot) {
		out(s, "error no free datagram slot\n");
	} else {
		spin_lock_irq(&rec_lock);
		slot->first = slot->count = 0;
		slot->dropped = 0;
		spin_unlock_irq(&rec_lock);
		result = vmci_datagram_create_handle(rid, flags, dg_received, slot, &slot->handle);
		if (result < VMCI_SUCCESS) {
			vmci_error(s, "vmci_datagram_create_handle", result);
		} else {
			slot->used = true;
			out(s, "ok %u:%u\n", slot->handle.context, slot->handle.resource);
		}
	}
	mutex_unlock(&table_lock);
}

static void cmd_dg_destroy(struct session *s, char *line)
{
	u32 rid;
	struct dg_slot *slot;
	int result;

	if (!parse_u32(&line, &rid))
		return out(s, "error usage: dg-destroy RID\n");
	mutex_lock(&table_lock);
	slot = dg_find(rid);
	if (!slot) {
		out(s, "error no datagram handle %u\n", rid);
	} else {
		result = vmci_datagram_destroy_handle(slot->handle);
		slot->used = false;
		if (result < VMCI_SUCCESS)
			vmci_error(s, "vmci_datagram_destroy_handle", result);
		else
			out(s, "ok\n");
	}
	mutex_unlock(&table_lock);
}

static void dg_send(struct session *s, u32 src_rid, struct vmci_handle dst, const char *text,
		    u32 size, u64 seed)
{
	struct vmci_datagram *dg;
	struct byte_stream stream;
	struct dg_slot *slot;
	int result;

	if (size > VMCI_MAX_DG_PAYLOAD_SIZE)
		return out(s, "error size %u above VMCI_MAX_DG_PAYLOAD_SIZE %lu\n", size,
			   (unsigned long)VMCI_MAX_DG_PAYLOAD_SIZE);
	dg = kvzalloc(sizeof(*dg) + size, GFP_KERNEL);
	if (!dg)
		return out(s, "error out of memory\n");
	if (text) {
		memcpy(VMCI_DG_PAYLOAD(dg), text, size);
	} else {
		stream_init(&stream, seed);
		stream_fill(&stream, VMCI_DG_PAYLOAD(dg), size);
	}
	dg->dst = dst;
	dg->payload_size = size;
	mutex_lock(&table_lock);
	slot = dg_find(src_rid);
	if (slot)
		dg->src = slot->handle;
	mutex_unlock(&table_lock);
	if (!slot) {
		out(s, "error no datagram handle %u\n", src_rid);
	} else {
		result = vmci_datagram_send(dg);
		if (result < VMCI_SUCCESS)
			vmci_error(s, "vmci_datagram_send", result);
		else
			out(s, "ok %d\n", result);
	}
	kvfree(dg);
}

static void cmd_dg_send(struct session *s, char *line)
{
	u32 src;
	struct vmci_handle dst;

	if (!parse_u32(&line, &src) || !parse_handle(&line, &dst) || !line)
		return out(s, "error usage: dg-send SRC_RID DST_CID:DST_RID TEXT\n");
	dg_send(s, src, dst, line, strlen(line), 0);
}

static void cmd_dg_send_size(struct session *s, char *line)
{
	u32 src, size;
	u64 seed;
	struct vmci_handle dst;

	if (!parse_u32(&line, &src) || !parse_handle(&line, &dst) || !parse_u32(&line, &size) ||
	    !parse_u64(&line, &seed))
		return out(s, "error usage: dg-send-size SRC_RID DST_CID:DST_RID SIZE SEED\n");
	dg_send(s, src, dst, NULL, size, seed);
}

static unsigned int dg_pending(struct dg_slot *slot)
{
	unsigned int n;

	spin_lock_irq(&rec_lock);
	n = slot->count;
	spin_unlock_irq(&rec_lock);
	return n;
}

static void cmd_dg_recv(struct session *s, char *line)
{
	u32 rid, min = 0, ms = DEFAULT_TIMEOUT_MS;
	struct dg_slot *slot;
	struct dg_record r;
	unsigned int n = 0;
	u64 dropped;

	if (!parse_u32(&line, &rid) || !parse_opt_u32(&line, &min) || !parse_opt_u32(&line, &ms))
		return out(s, "error usage: dg-recv RID [MIN [TIMEOUT_MS]]\n");
	min = min_t(u32, min, MAX_DG_RECORDS);
	mutex_lock(&table_lock);
	slot = dg_find(rid);
	mutex_unlock(&table_lock);
	if (!slot)
		return out(s, "error no datagram handle %u\n", rid);
	/* The slot may be destroyed meanwhile: it is static, so reading it stays safe. */
	if (wait_event_interruptible_timeout(arrivals, dg_pending(slot) >= min,
					     timeout_jiffies(ms)) < 0)
		return out(s, "error interrupted\n");
	spin_lock_irq(&rec_lock);
	dropped = slot->dropped;
	n = slot->count;
	spin_unlock_irq(&rec_lock);
	out(s, "ok %u dropped %llu\n", n, dropped);
	while (n--) {
		/* Another reader may have taken some meanwhile. */
		spin_lock_irq(&rec_lock);
		if (!slot->count) {
			spin_unlock_irq(&rec_lock);
			break;
		}
		r = slot->ring[slot->first];
		slot->first = (slot->first + 1) % MAX_DG_RECORDS;
		slot->count--;
		spin_unlock_irq(&rec_lock);
		out(s, "datagram %u:%u %u %08x %s\n", r.src.context, r.src.resource, r.size, r.sum,
		    r.head);
	}
}

static void cmd_event_subscribe(struct session *s, char *line)
{
	char *name = word(&line);
	u32 event = VMCI_EVENT_MAX, sub;
	int i, slot = -1, result;

	for (i = 0; name && i < VMCI_EVENT_MAX; i++)
		if (!strcmp(name, event_names[i]))
			event = i;
	if (name && event == VMCI_EVENT_MAX && kstrtou32(name, 0, &event))
		return out(s, "error unknown event %s\n", name);
	if (!name)
		return out(s, "error usage: event-subscribe NAME|NUMBER\n");
	mutex_lock(&table_lock);
	for (i = 0; i < MAX_SUBS && slot < 0; i++)
		if (!subs_used[i])
			slot = i;
	if (slot < 0) {
		out(s, "error no free subscription slot\n");
	} else {
		/* The driver checks the event number itself: that is part of what is tested. */
		result = vmci_event_subscribe(event, event_received, NULL, &sub);
		if (result < VMCI_SUCCESS) {
			vmci_error(s, "vmci_event_subscribe", result);
		} else {
			subs[slot] = sub;
			subs_used[slot] = true;
			out(s, "ok %u\n", sub);
		}
	}
	mutex_unlock(&table_lock);
}

static void cmd_event_unsubscribe(struct session *s, char *line)
{
	u32 sub;
	int i, result;

	if (!parse_u32(&line, &sub))
		return out(s, "error usage: event-unsubscribe SUBID\n");
	mutex_lock(&table_lock);
	for (i = 0; i < MAX_SUBS; i++)
		if (subs_used[i] && subs[i] == sub)
			break;
	if (i == MAX_SUBS) {
		/* Not ours: still ask the driver, whose answer is part of what is tested. */
		result = vmci_event_unsubscribe(sub);
	} else {
		result = vmci_event_unsubscribe(sub);
		if (result >= VMCI_SUCCESS)
			subs_used[i] = false;
	}
	mutex_unlock(&table_lock);
	if (result < VMCI_SUCCESS)
		vmci_error(s, "vmci_event_unsubscribe", result);
	else
		out(s, "ok\n");
}

static unsigned int events_pending(void)
{
	unsigned int n;

	spin_lock_irq(&rec_lock);
	n = events_count;
	spin_unlock_irq(&rec_lock);
	return n;
}

static void cmd_events(struct session *s, char *line)
{
	u32 min = 0, ms = DEFAULT_TIMEOUT_MS;
	struct event_record r;
	unsigned int n;
	u64 dropped;

	if (!parse_opt_u32(&line, &min) || !parse_opt_u32(&line, &ms))
		return out(s, "error usage: events [MIN [TIMEOUT_MS]]\n");
	min = min_t(u32, min, MAX_EVENTS);
	if (wait_event_interruptible_timeout(arrivals, events_pending() >= min,
					     timeout_jiffies(ms)) < 0)
		return out(s, "error interrupted\n");
	spin_lock_irq(&rec_lock);
	n = events_count;
	dropped = events_dropped;
	spin_unlock_irq(&rec_lock);
	out(s, "ok %u dropped %llu\n", n, dropped);
	while (n--) {
		spin_lock_irq(&rec_lock);
		if (!events_count) {
			spin_unlock_irq(&rec_lock);
			break;
		}
		r = events[events_first];
		events_first = (events_first + 1) % MAX_EVENTS;
		events_count--;
		spin_unlock_irq(&rec_lock);
		if (r.event == VMCI_EVENT_QP_PEER_ATTACH || r.event == VMCI_EVENT_QP_PEER_DETACH)
			out(s, "event %u %s %u:%u %u\n", r.sub, event_names[r.event],
			    r.qp.handle.context, r.qp.handle.resource, r.qp.peer_id);
		else
			out(s, "event %u %s %u\n", r.sub,
			    r.event < VMCI_EVENT_MAX ? event_names[r.event] : "?",
			    r.qp.handle.context);
	}
}

static struct db_slot *db_find(struct vmci_handle h)
{
	int i;

	for (i = 0; i < MAX_DOORBELLS; i++)
		if (dbs[i].used && same(dbs[i].handle, h))
			return &dbs[i];
	return NULL;
}

static void cmd_db_create(struct session *s, char *line)
{
	u32 rid = VMCI_INVALID_ID, flags = 0;
	char *w = word(&line);
	struct db_slot *slot = NULL;
	int i, result;

	if (w && !strcmp(w, "delayed")) {
		flags = VMCI_FLAG_DELAYED_CB;
	} else if (w) {
		if (strcmp(w, "any") && kstrtou32(w, 0, &rid))
			return out(s, "error usage: db-create [RID|any] [delayed]\n");
		w = word(&line);
		if (w && !strcmp(w, "delayed"))
			flags = VMCI_FLAG_DELAYED_CB;
		else if (w)
			return out(s, "error unknown option %s\n", w);
	}
	mutex_lock(&table_lock);
	for (i = 0; i < MAX_DOORBELLS && !slot; i++)
		if (!dbs[i].used)
			slot = &dbs[i];
	if (!slot) {
		out(s, "error no free doorbell slot\n");
	} else {
		atomic_set(&slot->calls, 0);
		/* The driver takes a resource only with a valid context. */
		slot->handle = rid == VMCI_INVALID_ID ? VMCI_INVALID_HANDLE :
			vmci_make_handle(vmci_get_context_id(), rid);
		result = vmci_doorbell_create(&slot->handle, flags, VMCI_NO_PRIVILEGE_FLAGS,
					      doorbell_rung, slot);
		if (result < VMCI_SUCCESS) {
			vmci_error(s, "vmci_doorbell_create", result);
		} else {
			slot->used = true;
			out(s, "ok %u:%u\n", slot->handle.context, slot->handle.resource);
		}
	}
	mutex_unlock(&table_lock);
}

static void cmd_db_destroy(struct session *s, char *line)
{
	struct vmci_handle h;
	struct db_slot *slot;
	int result;

	if (!parse_handle(&line, &h))
		return out(s, "error usage: db-destroy CID:RID\n");
	mutex_lock(&table_lock);
	slot = db_find(h);
	if (!slot) {
		/* Not ours: the driver's answer is what is tested. */
		result = vmci_doorbell_destroy(h);
	} else {
		result = vmci_doorbell_destroy(h);
		slot->used = false;
	}
	mutex_unlock(&table_lock);
	if (result < VMCI_SUCCESS)
		vmci_error(s, "vmci_doorbell_destroy", result);
	else
		out(s, "ok\n");
}

static void cmd_db_notify(struct session *s, char *line)
{
	struct vmci_handle h;
	u32 times = 1, i;
	int result = VMCI_SUCCESS;

	if (!parse_handle(&line, &h) || !parse_opt_u32(&line, &times) || times > 100000)
		return out(s, "error usage: db-notify CID:RID [TIMES<=100000]\n");
	for (i = 0; i < times && result >= VMCI_SUCCESS; i++)
		result = vmci_doorbell_notify(h, VMCI_NO_PRIVILEGE_FLAGS);
	if (result < VMCI_SUCCESS)
		out(s, "error vmci %d (vmci_doorbell_notify, ring %u)\n", result, i);
	else
		out(s, "ok %d\n", result);
}

static void cmd_db_count(struct session *s, char *line)
{
	struct vmci_handle h;
	u32 min = 0, ms = DEFAULT_TIMEOUT_MS;
	struct db_slot *slot;

	if (!parse_handle(&line, &h) || !parse_opt_u32(&line, &min) || !parse_opt_u32(&line, &ms))
		return out(s, "error usage: db-count CID:RID [MIN [TIMEOUT_MS]]\n");
	mutex_lock(&table_lock);
	slot = db_find(h);
	mutex_unlock(&table_lock);
	if (!slot)
		return out(s, "error no doorbell %u:%u\n", h.context, h.resource);
	if (wait_event_interruptible_timeout(arrivals, atomic_read(&slot->calls) >= (int)min,
					     timeout_jiffies(ms)) < 0)
		return out(s, "error interrupted\n");
	out(s, "ok %d\n", atomic_read(&slot->calls));
}

static struct qp_slot *qp_find(struct vmci_handle h)
{
	int i;

	for (i = 0; i < MAX_QPS; i++)
		if (qps[i].used && same(qps[i].handle, h))
			return &qps[i];
	return NULL;
}

static void cmd_qp_alloc(struct session *s, char *line)
{
	u32 peer;
	u64 produce, consume;
	struct vmci_handle h = VMCI_INVALID_HANDLE;
	struct qp_slot *slot = NULL;
	char *rest;
	int i, result;

	if (!parse_id(&line, &peer) || !parse_u64(&line, &produce) || !parse_u64(&line, &consume))
		return out(s, "error usage: qp-alloc PEER|any PRODUCE CONSUME [CID:RID]\n");
	rest = line;
	if (word(&rest) && !parse_handle(&line, &h))
		return out(s, "error usage: qp-alloc PEER|any PRODUCE CONSUME [CID:RID]\n");
	mutex_lock(&table_lock);
	for (i = 0; i < MAX_QPS && !slot; i++)
		if (!qps[i].used)
			slot = &qps[i];
	if (!slot) {
		out(s, "error no free queue-pair slot\n");
	} else {
		/* The driver checks sizes and flags: its answers are what is tested. */
		result = vmci_qpair_alloc(&slot->qp, &h, produce, consume, peer, 0,
					  VMCI_NO_PRIVILEGE_FLAGS);
		if (result < VMCI_SUCCESS) {
			vmci_error(s, "vmci_qpair_alloc", result);
		} else {
			slot->used = true;
			slot->busy = false;
			slot->handle = h;
			out(s, "ok %u:%u\n", h.context, h.resource);
		}
	}
	mutex_unlock(&table_lock);
}

/* Marks the pair busy for a stream; NULL (and an answer) when it is not there or busy. */
static struct qp_slot *qp_take(struct session *s, struct vmci_handle h)
{
	struct qp_slot *slot;

	mutex_lock(&table_lock);
	slot = qp_find(h);
	if (!slot) {
		out(s, "error no queue pair %u:%u\n", h.context, h.resource);
	} else if (slot->busy) {
		out(s, "error queue pair %u:%u is busy\n", h.context, h.resource);
		slot = NULL;
	} else {
		slot->busy = true;
	}
	mutex_unlock(&table_lock);
	return slot;
}

static void qp_give_back(struct qp_slot *slot)
{
	mutex_lock(&table_lock);
	slot->busy = false;
	mutex_unlock(&table_lock);
}

static void cmd_qp_stream(struct session *s, char *line, bool writing)
{
	struct vmci_handle h;
	u64 size, seed, done = 0, mismatch = U64_MAX;
	u32 ms = DEFAULT_TIMEOUT_MS, sum = FNV32_START;
	struct byte_stream stream;
	struct qp_slot *slot;
	unsigned long deadline;
	u8 *buf, *expect = NULL;
	ssize_t n = 0;

	if (!parse_handle(&line, &h) || !parse_u64(&line, &size) || !parse_u64(&line, &seed) ||
	    !parse_opt_u32(&line, &ms))
		return out(s, "error usage: qp-%s CID:RID SIZE SEED [TIMEOUT_MS]\n",
			   writing ? "write" : "read");
	buf = kvmalloc(CHUNK, GFP_KERNEL);
	if (!writing)
		expect = kvmalloc(CHUNK, GFP_KERNEL);
	if (!buf || (!writing && !expect)) {
		kvfree(buf);
		kvfree(expect);
		return out(s, "error out of memory\n");
	}
	slot = qp_take(s, h);
	if (!slot)
		goto free;
	stream_init(&stream, seed);
	deadline = jiffies + timeout_jiffies(ms);
	while (done < size) {
		size_t want = min_t(u64, size - done, CHUNK);

		if (writing) {
			/* A chunk not taken whole is rewritten from where it stopped. */
			stream_fill(&stream, buf, want);
			n = 0;
			while (n < (ssize_t)want) {
				ssize_t put = vmci_qpair_enqueue(slot->qp, buf + n, want - n, 0);

				if (put > 0) {
					sum = fnv32(sum, buf + n, put);
					n += put;
					done += put;
					deadline = jiffies + timeout_jiffies(ms);
					continue;
				}
				if (put != VMCI_ERROR_QUEUEPAIR_NOSPACE && put != 0 &&
				    put != VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
					n = put;
					goto stop;
				}
				if (time_after(jiffies, deadline) || fatal_signal_pending(current)) {
					n = -ETIMEDOUT;
					goto stop;
				}
				usleep_range(200, 1000);
			}
		} else {
			ssize_t got = vmci_qpair_dequeue(slot->qp, buf, want, 0);

			if (got > 0) {
				stream_fill(&stream, expect, got);
				if (mismatch == U64_MAX && memcmp(buf, expect, got)) {
					size_t i = 0;

					while (buf[i] == expect[i])
						i++;
					mismatch = done + i;
				}
				sum = fnv32(sum, buf, got);
				done += got;
				deadline = jiffies + timeout_jiffies(ms);
				continue;
			}
			if (got != VMCI_ERROR_QUEUEPAIR_NODATA && got != 0 &&
			    got != VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
				n = got;
				goto stop;
			}
			if (time_after(jiffies, deadline) || fatal_signal_pending(current)) {
				n = -ETIMEDOUT;
				goto stop;
			}
			usleep_range(200, 1000);
		}
	}
	n = 0;
stop:
	if (n == -ETIMEDOUT)
		out(s, "error timeout after %llu bytes\n", done);
	else if (n < 0)
		out(s, "error vmci %zd (vmci_qpair_%s) after %llu bytes\n", n,
		    writing ? "enqueue" : "dequeue", done);
	else if (mismatch != U64_MAX)
		out(s, "error mismatch at byte %llu of %llu\n", mismatch, done);
	else
		out(s, "ok %llu %08x\n", done, sum);
	qp_give_back(slot);
free:
	kvfree(buf);
	kvfree(expect);
}

static void cmd_qp_state(struct session *s, char *line)
{
	struct vmci_handle h;
	struct qp_slot *slot;

	if (!parse_handle(&line, &h))
		return out(s, "error usage: qp-state CID:RID\n");
	mutex_lock(&table_lock);
	slot = qp_find(h);
	if (!slot)
		out(s, "error no queue pair %u:%u\n", h.context, h.resource);
	else
		out(s, "ok %lld %lld %lld %lld\n", vmci_qpair_produce_free_space(slot->qp),
		    vmci_qpair_produce_buf_ready(slot->qp), vmci_qpair_consume_free_space(slot->qp),
		    vmci_qpair_consume_buf_ready(slot->qp));
	mutex_unlock(&table_lock);
}

static void cmd_qp_detach(struct session *s, char *line)
{
	struct vmci_handle h;
	struct qp_slot *slot;
	int result;

	if (!parse_handle(&line, &h))
		return out(s, "error usage: qp-detach CID:RID\n");
	mutex_lock(&table_lock);
	slot = qp_find(h);
	if (!slot) {
		out(s, "error no queue pair %u:%u\n", h.context, h.resource);
	} else if (slot->busy) {
		out(s, "error queue pair %u:%u is busy\n", h.context, h.resource);
	} else {
		result = vmci_qpair_detach(&slot->qp);
		slot->used = false;
		if (result < VMCI_SUCCESS)
			vmci_error(s, "vmci_qpair_detach", result);
		else
			out(s, "ok\n");
	}
	mutex_unlock(&table_lock);
}

static void run(struct session *s, char *line)
{
	char *cmd = word(&line);

	if (line)
		line = skip_spaces(line);
	if (!cmd)
		out(s, "error empty command\n");
	else if (!strcmp(cmd, "cid"))
		out(s, "ok %u\n", vmci_get_context_id());
	else if (!strcmp(cmd, "dg-create"))
		cmd_dg_create(s, line);
	else if (!strcmp(cmd, "dg-destroy"))
		cmd_dg_destroy(s, line);
	else if (!strcmp(cmd, "dg-send"))
		cmd_dg_send(s, line);
	else if (!strcmp(cmd, "dg-send-size"))
		cmd_dg_send_size(s, line);
	else if (!strcmp(cmd, "dg-recv"))
		cmd_dg_recv(s, line);
	else if (!strcmp(cmd, "event-subscribe"))
		cmd_event_subscribe(s, line);
	else if (!strcmp(cmd, "event-unsubscribe"))
		cmd_event_unsubscribe(s, line);
	else if (!strcmp(cmd, "events"))
		cmd_events(s, line);
	else if (!strcmp(cmd, "db-create"))
		cmd_db_create(s, line);
	else if (!strcmp(cmd, "db-destroy"))
		cmd_db_destroy(s, line);
	else if (!strcmp(cmd, "db-notify"))
		cmd_db_notify(s, line);
	else if (!strcmp(cmd, "db-count"))
		cmd_db_count(s, line);
	else if (!strcmp(cmd, "qp-alloc"))
		cmd_qp_alloc(s, line);
	else if (!strcmp(cmd, "qp-write"))
		cmd_qp_stream(s, line, true);
	else if (!strcmp(cmd, "qp-read"))
		cmd_qp_stream(s, line, false);
	else if (!strcmp(cmd, "qp-state"))
		cmd_qp_state(s, line);
	else if (!strcmp(cmd, "qp-detach"))
		cmd_qp_detach(s, line);
	else
		out(s, "error unknown command %s\n", cmd);
}

/* The control file. */

static int control_open(struct inode *inode, struct file *file)
{
	struct session *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return -ENOMEM;
	s->result = kvzalloc(RESULT_SIZE, GFP_KERNEL);
	if (!s->result) {
		kfree(s);
		return -ENOMEM;
	}
	file->private_data = s;
	return 0;
}

static int control_release(struct inode *inode, struct file *file)
{
	struct session *s = file->private_data;

	kvfree(s->result);
	kfree(s);
	return 0;
}

/* One command per write (a trailing newline is dropped); the result replaces the last. */
static ssize_t control_write(struct file *file, const char __user *ubuf, size_t count,
			     loff_t *ppos)
{
	struct session *s = file->private_data;
	char *line;

	if (count >= COMMAND_SIZE)
		return -EINVAL;
	line = memdup_user_nul(ubuf, count);
	if (IS_ERR(line))
		return PTR_ERR(line);
	strim(line);
	s->len = 0;
	s->result[0] = '\0';
	run(s, line);
	kfree(line);
	*ppos = 0; /* the next read starts at the result's beginning */
	return count;
}

static ssize_t control_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct session *s = file->private_data;

	return simple_read_from_buffer(ubuf, count, ppos, s->result, s->len);
}

static const struct proc_ops control_ops = {
	.proc_open = control_open,
	.proc_release = control_release,
	.proc_read = control_read,
	.proc_write = control_write,
	.proc_lseek = default_llseek,
};

static struct proc_dir_entry *control;

static int __init vmci_test_init(void)
{
	control = proc_create("vmci-test", 0600, NULL, &control_ops);
	if (!control)
		return -ENOMEM;
	pr_info("vmci_test: /proc/vmci-test ready, context %u\n", vmci_get_context_id());
	return 0;
}

static void __exit vmci_test_exit(void)
{
	int i;

	proc_remove(control); /* waits for commands in progress */
	for (i = 0; i < MAX_QPS; i++)
		if (qps[i].used)
			vmci_qpair_detach(&qps[i].qp);
	for (i = 0; i < MAX_DOORBELLS; i++)
		if (dbs[i].used)
			vmci_doorbell_destroy(dbs[i].handle);
	for (i = 0; i < MAX_SUBS; i++)
		if (subs_used[i])
			vmci_event_unsubscribe(subs[i]);
	for (i = 0; i < MAX_DG_HANDLES; i++)
		if (dgs[i].used)
			vmci_datagram_destroy_handle(dgs[i].handle);
}

module_init(vmci_test_init);
module_exit(vmci_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmci-hostpeer's guest-side test actor over the kernel's VMCI API");
MODULE_SOFTDEP("pre: vmw_vmci");
