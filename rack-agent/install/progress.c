#include "install/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hashmap.h"
#include "log.h"
#include "parse.h"
#include "rbproto.h"
#include "util.h"

#define COMPLETED_FILE "completed"
#define WRITTEN_FILE   "written"
#define ID_MAX         128

typedef struct listed_id {
    char id[ID_MAX + 1];
    size_t len;
} listed_id;

/* Install ids in the order they were added (oldest first) and by id, kept
 * in a file of one id per line: the completed installs, and the image
 * deploys whose image is written. */
typedef struct id_list {
    char *path;
    listed_id *ids;
    size_t n, cap;
    hashmap *by_id;
} id_list;

/* What the sync that makes an event durable does for its install. */
typedef enum post_effect {
    POST_NOTHING = 0,
    POST_COMPLETE, /* installed, first_boot: withdraw the intent */
    POST_WRITTEN,  /* written: no more netboot answers */
} post_effect;

/* The installer's `installed` ends a kickstart install; an image deploy
 * and a Debian installer end only when the installed system phones home
 * (first_boot), and their `written` or `installed` says the system is on
 * its disk (model/profile.h profile_kind_ends_on_first_boot()). */
static post_effect post_effect_of(const intent *in, Rackboot__V1__Phase phase)
{
    bool on_disk_first = in->profile && profile_kind_ends_on_first_boot(in->profile->kind);
    switch (phase) {
    case RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT:
        return POST_COMPLETE;
    case RACKBOOT__V1__PHASE__PHASE_INSTALLED:
        return on_disk_first ? POST_WRITTEN : POST_COMPLETE;
    case RACKBOOT__V1__PHASE__PHASE_WRITTEN:
        return POST_WRITTEN;
    default:
        return POST_NOTHING;
    }
}

/* An event waiting for the sync that makes it durable: an installer's post,
 * and any `installed`, `first_boot` or `written` (its effect comes only
 * then). */
struct progress_post {
    char install_id[ID_MAX + 1];
    uint64_t seq; /* its event's journal seq (0 without a journal) */
    post_effect effect;
    progress_posted_fn fn; /* NULL: nobody waits (detached, or not a post) */
    void *userdata;
    struct progress_post *next;
};

struct progress {
    uv_loop_t *loop;
    journal *journal;
    uv_timer_t sync_timer;
    bool sync_pending;
    void (*durable_fn)(void *userdata);
    void *durable_userdata;
    void (*completed_fn)(void *userdata, const char *install_id);
    void *completed_userdata;
    void (*written_fn)(void *userdata, const char *install_id);
    void *written_userdata;
    id_list completed; /* STATE_DIR/completed */
    id_list written;   /* STATE_DIR/written */
    /* Events waiting for the next sync, in the order they were recorded. */
    progress_post *posts, **posts_tail;
    progress_stats stats;
};

/* ---- The id lists --------------------------------------------------- */

static int list_index(id_list *l)
{
    hashmap_clear(l->by_id);
    for (size_t i = 0; i < l->n; i++) {
        int r = hashmap_put(l->by_id, l->ids[i].id, l->ids[i].len, &l->ids[i]);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static bool list_has(const id_list *l, const char *id)
{
    return hashmap_get(l->by_id, id, strlen(id)) != NULL;
}

static int list_append(id_list *l, const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > ID_MAX) {
        return -EINVAL;
    }
    if (l->n == PROGRESS_MAX_COMPLETED) {
        /* Forget the oldest: an install that old is long gone from every
         * intent set. */
        memmove(l->ids, l->ids + 1, (l->n - 1) * sizeof(*l->ids));
        l->n--;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        listed_id *grown = realloc(l->ids, cap * sizeof(*grown));
        if (!grown) {
            return -ENOMEM;
        }
        l->ids = grown;
        l->cap = cap;
    }
    memcpy(l->ids[l->n].id, id, len + 1);
    l->ids[l->n].len = len;
    l->n++;
    return list_index(l); /* the array may have moved */
}

static int list_load(id_list *l)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fileio_read_all(l->path, (size_t)PROGRESS_MAX_COMPLETED * (ID_MAX + 1), (void **)&buf,
                            &len);
    if (r == -ENOENT) {
        return 0;
    }
    if (r < 0) {
        return r;
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (*line && list_append(l, line) == -ENOMEM) {
            return -ENOMEM;
        }
    }
    return 0;
}

static int list_save(const id_list *l)
{
    size_t cap = l->n * (ID_MAX + 1) + 1;
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        memcpy(buf + off, l->ids[i].id, l->ids[i].len);
        off += l->ids[i].len;
        buf[off++] = '\n';
    }
    return fileio_write_atomic(l->path, buf, off, 0600);
}

static int list_open(id_list *l, const char *state_dir, const char *name)
{
    if (asprintf(&l->path, "%s/%s", state_dir, name) < 0) {
        l->path = NULL;
        return -ENOMEM;
    }
    int r = hashmap_new(256, &l->by_id);
    return r < 0 ? r : list_load(l);
}

static void list_close(id_list *l)
{
    hashmap_free(l->by_id);
    free(l->ids);
    free(l->path);
}

/* Adds `id` and saves the list; an error is logged, as the state it
 * records takes effect in memory anyway. */
static void list_remember(id_list *l, const char *id, const char *what)
{
    if (list_has(l, id)) {
        return;
    }
    int r = list_append(l, id);
    if (r >= 0) {
        r = list_save(l);
    }
    if (r < 0) {
        log_error("cannot record install %s as %s in %s: %s", id, what, l->path, errstr(r));
    }
}

bool progress_is_completed(const progress *p, const char *install_id)
{
    return list_has(&p->completed, install_id);
}

bool progress_is_written(const progress *p, const char *install_id)
{
    return list_has(&p->written, install_id);
}

static bool keep_unfinished(const intent *in, void *userdata)
{
    return !progress_is_completed(userdata, in->install_id);
}

int progress_filter(const progress *p, intent_set *set, intent_set **ret)
{
    bool any = false;
    for (size_t i = 0; i < intent_set_size(set); i++) {
        const char *id = intent_set_at(set, i)->install_id;
        any = any || progress_is_completed(p, id);
        if (progress_is_written(p, id)) {
            intent_set_mark_netboot_done(set, id);
        }
    }
    if (!any) {
        *ret = set;
        return 0;
    }
    intent_set *filtered = NULL;
    int r = intent_set_filter(set, keep_unfinished, RB_UNCONST(p), &filtered);
    if (r < 0) {
        return r; /* the caller still owns `set` */
    }
    intent_set_free(set);
    *ret = filtered;
    return 0;
}

/* ---- Events ------------------------------------------------------------ */

static void complete(progress *p, const char *install_id_in);
static void mark_written(progress *p, const char *install_id_in);

/* 0 if w's event is durable, else why not. Asked by seq, not told by the
 * sync's result: the fsync that lost the event may have been another
 * append's (sealing a full segment in the same loop iteration), after which
 * the sync succeeds on what is left; and an event sealed durable that way
 * stays durable when the sync itself fails. */
static int post_result(progress *p, const progress_post *w, int r)
{
    if (!p->journal || journal_seq_durable(p->journal, w->seq)) {
        return 0;
    }
    if (r == 0) {
        log_error("journal: event seq=%" PRIu64 " install=%s lost to a failed fsync, not recorded",
                  w->seq, w->install_id);
    }
    return r < 0 ? r : -EIO;
}

/* Tells the events the last sync covered how it went (r, that sync's
 * result): every post in the list was appended before that sync started,
 * and appends happen on the loop only. */
static void settle_posts(progress *p, int r)
{
    /* Posts made from the callbacks wait for a sync of their own. */
    progress_post *list = p->posts;
    p->posts = NULL;
    p->posts_tail = &p->posts;
    while (list) {
        progress_post *w = list;
        list = w->next;
        int wr = post_result(p, w, r);
        /* Completion before the answer: the installer reboots on its 200,
         * and the next boot must find the intent withdrawn. */
        if (wr == 0 && w->effect == POST_COMPLETE) {
            complete(p, w->install_id);
        } else if (wr == 0 && w->effect == POST_WRITTEN) {
            mark_written(p, w->install_id);
        }
        if (w->fn) {
            w->fn(w->userdata, wr);
        }
        free(w);
    }
}

static void on_sync(uv_timer_t *t)
{
    progress *p = t->data;
    p->sync_pending = false;
    int r = p->journal ? journal_sync(p->journal) : 0;
    if (r < 0) {
        /* The journal takes those events back at its next append or sync
         * (journal.h); posters are told, and installers retry. */
        log_error("journal: sync failed: %s (the events since the last sync are lost)", errstr(r));
    } else if (p->journal && p->durable_fn) {
        p->durable_fn(p->durable_userdata);
    }
    settle_posts(p, r);
}

static void schedule_sync(progress *p)
{
    if (!p->sync_pending) {
        p->sync_pending = true;
        uv_timer_start(&p->sync_timer, on_sync, 0, 0); /* after this loop iteration's work */
    }
}

static int journal_record(progress *p, const intent *in, Rackboot__V1__Phase phase,
                          uint32_t percent, const char *message, const uint8_t *mac,
                          const uint8_t *duid, size_t duid_len, uint64_t *ret_seq);

static void complete(progress *p, const char *install_id_in)
{
    if (progress_is_completed(p, install_id_in)) {
        return;
    }
    char install_id[ID_MAX + 1];
    snprintf(install_id, sizeof(install_id), "%s", install_id_in);
    list_remember(&p->completed, install_id, "completed");
    if (p->completed_fn) {
        p->completed_fn(p->completed_userdata, install_id);
    }
}

static void mark_written(progress *p, const char *install_id_in)
{
    if (progress_is_written(p, install_id_in)) {
        return;
    }
    char install_id[ID_MAX + 1];
    snprintf(install_id, sizeof(install_id), "%s", install_id_in);
    list_remember(&p->written, install_id, "written");
    if (p->written_fn) {
        p->written_fn(p->written_userdata, install_id);
    }
}

static int record(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                  const char *message, const uint8_t *mac, const uint8_t *duid, size_t duid_len,
                  progress_posted_fn fn, void *userdata, progress_post **ret)
{
    p->stats.events++;
    char mac_text[FORMAT_MAC_LEN] = "";
    if (mac) {
        format_mac(mac, mac_text);
    }
    char msg[160];
    log_info("event host=%s install=%s phase=%s%s%s percent=%u message=%s", in->host,
             in->install_id, rbproto_phase_to_string(phase), mac ? " mac=" : "", mac_text, percent,
             log_quote(msg, sizeof(msg), message ? message : ""));

    post_effect effect = post_effect_of(in, phase);
    progress_post *w = NULL;
    if (fn || effect != POST_NOTHING) {
        /* Before the append: once the event is in the journal, nothing may
         * fail that would leave it without its completion. */
        w = calloc(1, sizeof(*w));
        if (!w) {
            p->stats.events_failed++;
            return -ENOMEM;
        }
        snprintf(w->install_id, sizeof(w->install_id), "%s", in->install_id);
        w->effect = effect;
        w->fn = fn;
        w->userdata = userdata;
    }
    uint64_t seq = 0;
    int r =
        p->journal ? journal_record(p, in, phase, percent, message, mac, duid, duid_len, &seq) : 0;
    if (r < 0) {
        free(w);
        return r;
    }
    if (w) {
        w->seq = seq;
        *p->posts_tail = w;
        p->posts_tail = &w->next;
    }
    if (p->journal || w) {
        schedule_sync(p);
    }
    if (ret) {
        *ret = w;
    }
    return 0;
}

int progress_emit(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                  const char *message, const uint8_t *mac, const uint8_t *duid, size_t duid_len)
{
    return record(p, in, phase, percent, message, mac, duid, duid_len, NULL, NULL, NULL);
}

/* Appends to the journal, saying what went wrong or was dropped. */
static int journal_put(progress *p, const Rackboot__V1__Event *ev, uint64_t *ret_seq)
{
    int r = journal_append(p->journal, ev, ret_seq);
    if (r < 0) {
        p->stats.events_failed++;
        log_error("journal: event host=%s phase=%s not recorded: %s", ev->host,
                  rbproto_phase_to_string(ev->phase), errstr(r));
        return r;
    }
    if (r > 0) {
        log_warn(
            "journal: full, dropped the %d oldest unacknowledged events (total dropped %" PRIu64
            ")",
            r, journal_dropped_total(p->journal));
    }
    return 0;
}

int progress_emit_host_event(progress *p, const Rackboot__V1__Event *ev)
{
    p->stats.events++;
    char msg[160];
    log_info("event host=%s install=%s phase=%s power_id=%s message=%s", ev->host,
             strempty(ev->install_id) ? "-" : ev->install_id, rbproto_phase_to_string(ev->phase),
             strempty(ev->power_id) ? "-" : ev->power_id,
             log_quote(msg, sizeof(msg), ev->message ? ev->message : ""));
    if (!p->journal) {
        return 0;
    }
    int r = journal_put(p, ev, NULL);
    if (r >= 0) {
        schedule_sync(p);
    }
    return r;
}

int progress_post_event(progress *p, const intent *in, Rackboot__V1__Phase phase, uint32_t percent,
                        const char *message, progress_posted_fn fn, void *userdata,
                        progress_post **ret)
{
    RB_ASSERT(fn);
    return record(p, in, phase, percent, message, NULL, NULL, 0, fn, userdata, ret);
}

void progress_post_detach(progress_post *w)
{
    w->fn = NULL;
    w->userdata = NULL;
}

static int journal_record(progress *p, const intent *in, Rackboot__V1__Phase phase,
                          uint32_t percent, const char *message, const uint8_t *mac,
                          const uint8_t *duid, size_t duid_len, uint64_t *ret_seq)
{
    Rackboot__V1__Event ev = RACKBOOT__V1__EVENT__INIT;
    ev.install_id = in->install_id;
    ev.host = in->host;
    ev.phase = phase;
    ev.percent = percent;
    ev.message = RB_UNCONST(message ? message : "");
    if (mac) {
        ev.mac = (ProtobufCBinaryData){ 6, RB_UNCONST(mac) };
    }
    if (duid && duid_len) {
        ev.duid = (ProtobufCBinaryData){ duid_len, RB_UNCONST(duid) };
    }
    return journal_put(p, &ev, ret_seq);
}

/* ---- Lifecycle --------------------------------------------------------- */

int progress_new(uv_loop_t *loop, const char *state_dir, journal *j, progress **ret)
{
    progress *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    p->loop = loop;
    p->journal = j;
    p->posts_tail = &p->posts;
    int r = list_open(&p->completed, state_dir, COMPLETED_FILE);
    if (r >= 0) {
        r = list_open(&p->written, state_dir, WRITTEN_FILE);
    }
    if (r >= 0) {
        r = uv_timer_init(loop, &p->sync_timer);
    }
    if (r < 0) {
        list_close(&p->completed);
        list_close(&p->written);
        free(p);
        return r;
    }
    p->sync_timer.data = p;
    *ret = p;
    return 0;
}

static void free_after_close(uv_handle_t *h)
{
    progress *p = h->data;
    list_close(&p->completed);
    list_close(&p->written);
    free(p);
}

progress *progress_free(progress *p)
{
    if (!p) {
        return NULL;
    }
    /* The last sync settles what still waits: posters are gone by now (the
     * HTTP server cancelled their requests first), and an `installed` made
     * durable here is remembered as completed, for the next start to
     * filter; the daemon, shutting down, is not told. */
    for (progress_post *w = p->posts; w; w = w->next) {
        progress_post_detach(w);
    }
    p->completed_fn = NULL;
    p->written_fn = NULL;
    int r = p->journal ? journal_sync(p->journal) : 0;
    settle_posts(p, r);
    uv_close((uv_handle_t *)&p->sync_timer, free_after_close);
    return NULL;
}

void progress_on_durable(progress *p, void (*fn)(void *userdata), void *userdata)
{
    p->durable_fn = fn;
    p->durable_userdata = userdata;
}

void progress_on_completed(progress *p, void (*fn)(void *userdata, const char *install_id),
                           void *userdata)
{
    p->completed_fn = fn;
    p->completed_userdata = userdata;
}

void progress_on_written(progress *p, void (*fn)(void *userdata, const char *install_id),
                         void *userdata)
{
    p->written_fn = fn;
    p->written_userdata = userdata;
}

const progress_stats *progress_get_stats(const progress *p)
{
    return &p->stats;
}

void progress_refresh_stats(progress *p)
{
    p->stats.completed = p->completed.n;
    if (p->journal) {
        journal_stats js;
        journal_get_stats(p->journal, &js);
        p->stats.journal_pending = js.pending;
        p->stats.journal_dropped = js.dropped_total;
        p->stats.journal_damaged = js.damaged_total;
    }
}
