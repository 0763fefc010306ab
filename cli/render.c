#include "render.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "parse.h"
#include "rbproto.h"
#include "timeutil.h"
#include "util.h"

/* ---- small helpers ------------------------------------------------------ */

const char *render_addr(const ProtobufCBinaryData *b, char *buf)
{
    buf[0] = '\0';
    if (b->len == 16) {
        inet_ntop(AF_INET6, b->data, buf, INET6_ADDRSTRLEN);
    }
    return buf;
}

const char *render_time(uint64_t unix_ms, char *buf, size_t size)
{
    if (unix_ms == 0 || format_rfc3339_ms(unix_ms, buf, size) < 0) {
        snprintf(buf, size, "-");
    }
    return buf;
}

const char *render_state(Rackboot__V1__InstallState s)
{
    const char *n = rbproto_install_state_to_string(s);
    return n ? n : "-";
}

const char *render_phase(Rackboot__V1__Phase p)
{
    const char *n = rbproto_phase_to_string(p);
    return n ? n : "-";
}

/* JSON values for optional fields: null when absent. */
static json_t *jstr(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *jtime(uint64_t unix_ms)
{
    char buf[RFC3339_MS_LEN];
    if (unix_ms == 0 || format_rfc3339_ms(unix_ms, buf, sizeof(buf)) < 0) {
        return json_null();
    }
    return json_string(buf);
}

static json_t *jaddr(const ProtobufCBinaryData *b)
{
    char buf[INET6_ADDRSTRLEN];
    return jstr(render_addr(b, buf));
}

static json_t *jhex(const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        return json_null();
    }
    char *hex = malloc(2 * b->len + 1);
    if (!hex) {
        return NULL;
    }
    hex_encode(b->data, b->len, hex);
    json_t *j = json_string(hex);
    free(hex);
    return j;
}

static json_t *jmac(const ProtobufCBinaryData *b)
{
    if (b->len != 6) {
        return json_null();
    }
    char buf[FORMAT_MAC_LEN];
    format_mac(b->data, buf);
    return json_string(buf);
}

/* jansson's json_pack with "o" steals references and fails as a whole on a
 * NULL value (out of memory), so each builder is one call. Integers are
 * json_int_t (long long): uint64 values past 2^63 do not occur (sequence
 * numbers, milliseconds, generations). */
#define JU(v) ((json_int_t)(v))

static bool host_password_set(const Rackboot__V1__Host *h)
{
    return h->bmc_password_set || !strempty(h->bmc_password);
}

json_t *render_hosts_json(const Rackboot__V1__HostList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_hosts; i++) {
        const Rackboot__V1__Host *h = l->hosts[i];
        json_t *macs = json_array();
        for (size_t m = 0; macs && m < h->n_macs; m++) {
            json_array_append_new(macs, jmac(&h->macs[m]));
        }
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o}", "name", h->name, "rack",
                              h->rack, "macs", macs, "address", jaddr(&h->address), "prefix",
                              JU(h->prefix_length), "gateway", jaddr(&h->gateway), "hostname",
                              jstr(h->hostname), "duid", jhex(&h->duid));
        /* The BMC: never the password (a request being shown back holds
         * one), only whether there is one. */
        json_t *bmc =
            json_pack("{s:o, s:o, s:b, s:o, s:o, s:o}", "bmc", jstr(h->bmc_url), "bmc_user",
                      jstr(h->bmc_user), "bmc_password_set", (int)host_password_set(h), "firmware",
                      jstr(rbproto_firmware_to_string(h->firmware)), "power_state",
                      jstr(rbproto_power_state_to_string(h->power_state)), "power_updated",
                      jtime(h->power_updated_unix_ms));
        if (o && (!bmc || json_object_update(o, bmc) < 0)) {
            o = (json_decref(o), NULL);
        }
        json_decref(bmc);
        json_array_append_new(a, o);
    }
    return a;
}

/* A cache size as JSON: null before the agent reported, and a limit of 0
 * (none) as null too. */
static json_t *jcache(bool reported, uint64_t bytes)
{
    return reported && bytes > 0 ? json_integer(JU(bytes)) : json_null();
}

static json_t *agents_json(const Rackboot__V1__RackRow *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_agents; i++) {
        const Rackboot__V1__AgentRow *g = r->agents[i];
        bool reported = g->status_unix_ms > 0;
        json_array_append_new(
            a,
            json_pack("{s:I, s:o, s:o, s:o, s:I, s:o, s:o}", "instance", JU(g->instance), "agent",
                      jstr(g->agent), "agent_version", jstr(g->agent_version), "last_seen",
                      jtime(g->last_seen_unix_ms), "acked_generation", JU(g->acked_generation),
                      "cache_bytes", reported ? json_integer(JU(g->cache_bytes)) : json_null(),
                      "cache_limit_bytes", jcache(reported, g->cache_limit_bytes)));
    }
    return a;
}

json_t *render_racks_json(const Rackboot__V1__RackList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_racks; i++) {
        const Rackboot__V1__RackRow *r = l->racks[i];
        bool reported = r->status_unix_ms > 0;
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "rack", r->rack,
                         "agent", jstr(r->agent), "agent_version", jstr(r->agent_version),
                         "last_seen", jtime(r->last_seen_unix_ms), "generation", JU(r->generation),
                         "acked_generation", JU(r->acked_generation), "hosts", JU(r->hosts),
                         "active_installs", JU(r->active_installs), "cache_bytes",
                         reported ? json_integer(JU(r->cache_bytes)) : json_null(),
                         "cache_limit_bytes", jcache(reported, r->cache_limit_bytes), "agents",
                         agents_json(r)));
    }
    return a;
}

static json_t *image_json(const Rackboot__V1__Image *img)
{
    const char *kind = rbproto_image_kind_to_string(img->kind);
    return json_pack("{s:s, s:o, s:s, s:o, s:I}", "name", img->name, "kind", jstr(kind), "url",
                     img->url, "sha256", jhex(&img->sha256), "size", JU(img->size));
}

/* As the hosts file writes it (model/profile.h profile_kind_to_string). */
static const char *profile_kind_name(Rackboot__V1__ProfileKind k)
{
    switch (k) {
    case RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE:
        return "image";
    case RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_DEBIAN_INSTALLER:
        return "debian-installer";
    default:
        return "install";
    }
}

json_t *render_profiles_json(const Rackboot__V1__ProfileList *l, bool with_content)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_profiles; i++) {
        const Rackboot__V1__Profile *p = l->profiles[i];
        json_t *images = json_array();
        for (size_t k = 0; images && k < p->n_images; k++) {
            json_array_append_new(images, image_json(p->images[k]));
        }
        const char *ip = rbproto_ip_mode_to_string(p->ip_mode);
        json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:b, s:o, s:b, s:b}", "name", p->name, "images",
                              images, "kernel_args", jstr(p->kernel_args), "kickstart_sha256",
                              jhex(&p->kickstart_sha256), "overlay", p->overlay, "ip", jstr(ip),
                              "keep_ra", p->keep_ra, "source_check", !p->any_source);
        if (o && !strempty(p->root_device)) {
            json_object_set_new(o, "root_device", jstr(p->root_device));
        }
        if (o) {
            const char *uefi = rbproto_uefi_boot_to_string(p->uefi_boot);
            json_object_set_new(o, "uefi_boot", jstr(uefi ? uefi : "?"));
        }
        if (o && with_content) {
            json_object_set_new(o, "kickstart", jstr(p->kickstart_template));
        }
        if (o && p->kind != RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_INSTALL) {
            json_t *keys = json_array();
            for (size_t k = 0; keys && k < p->n_ssh_authorized_keys; k++) {
                json_array_append_new(keys, jstr(p->ssh_authorized_keys[k]));
            }
            json_object_set_new(o, "kind", json_string(profile_kind_name(p->kind)));
            json_object_set_new(o, "ssh_authorized_keys", keys);
            if (with_content && p->kind == RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE) {
                json_object_set_new(o, "user_data", jstr(p->user_data_template));
            }
        }
        json_array_append_new(a, o);
    }
    return a;
}

json_t *render_images_json(const Rackboot__V1__ImageList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_images; i++) {
        json_t *o = image_json(l->images[i]->image);
        if (o) {
            json_object_set_new(o, "profile", json_string(l->images[i]->profile));
        }
        json_array_append_new(a, o);
    }
    return a;
}

json_t *render_status_json(const Rackboot__V1__StatusList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_rows; i++) {
        const Rackboot__V1__StatusRow *r = l->rows[i];
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:I, s:o}", "host", r->host,
                         "rack", jstr(r->rack), "install_id", jstr(r->install_id), "profile",
                         jstr(r->profile), "state", jstr(rbproto_install_state_to_string(r->state)),
                         "phase", jstr(rbproto_phase_to_string(r->phase)), "percent",
                         JU(r->percent), "updated_at", jtime(r->updated_unix_ms), "attempt",
                         JU(r->attempt), "message", jstr(r->message)));
    }
    return a;
}

json_t *render_events_json(const Rackboot__V1__EventList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_events; i++) {
        const Rackboot__V1__EventRow *e = l->events[i];
        json_array_append_new(a, json_pack("{s:I, s:o, s:s, s:o, s:o, s:I, s:o}", "seq", JU(e->seq),
                                           "time", jtime(e->time_unix_ms), "host", e->host,
                                           "install_id", jstr(e->install_id), "phase",
                                           jstr(rbproto_phase_to_string(e->phase)), "percent",
                                           JU(e->percent), "message", jstr(e->message)));
    }
    return a;
}

static json_t *jnames(char **names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
    }
    return a;
}

json_t *render_audit_json(const Rackboot__V1__AuditList *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_rows; i++) {
        const Rackboot__V1__AuditRow *r = l->rows[i];
        json_array_append_new(
            a, json_pack("{s:I, s:o, s:s, s:s, s:o, s:I, s:o, s:b, s:s}", "seq", JU(r->seq), "time",
                         jtime(r->time_unix_ms), "who", r->who, "verb", r->verb, "hosts",
                         jnames(r->hosts, r->n_hosts), "host_count", JU(r->host_count), "profiles",
                         jnames(r->profiles, r->n_profiles), "ok", (int)r->ok, "result",
                         r->result ? r->result : ""));
    }
    return a;
}

/* ---- a listing, page by page -------------------------------------------- */

void render_stream_init(render_stream *s, FILE *f, output_format format)
{
    *s = (render_stream){ .f = f, .format = format };
}

/* Prints a page's rows (`a`, an array built by a render_*_json(); dropped)
 * into the listing; `name_key` names a row for OUTPUT_NAME. */
static int stream_structured(render_stream *s, json_t *a, const char *name_key)
{
    if (!s->started) {
        output_seq_init(&s->seq, s->f, s->format, name_key);
        s->started = true;
    }
    if (s->error) {
        json_decref(a);
        return s->error;
    }
    s->rows += json_array_size(a);
    s->error = output_seq_add(&s->seq, a);
    return s->error;
}

int render_stream_end(render_stream *s)
{
    if (!output_structured(s->format)) {
        return s->error;
    }
    if (!s->started) {
        if (s->error) {
            return s->error; /* nothing was opened */
        }
        output_seq_init(&s->seq, s->f, s->format, NULL);
        s->started = true;
    }
    int r = output_seq_end(&s->seq);
    s->error = s->error ? s->error : r;
    return s->error;
}

void render_stream_abandon(render_stream *s)
{
    if (!s->error) {
        s->error = -ECANCELED;
    }
    if (s->started && !s->seq.error) {
        s->seq.error = s->error; /* output_seq_end() then writes no end */
    }
    render_stream_end(s);
}

/* ---- tables ------------------------------------------------------------- */

typedef struct table {
    size_t cols;
    char **cells; /* row-major */
    size_t rows;
    bool oom;
} table;

static void table_add(table *t, ...)
{
    if (t->oom) {
        return;
    }
    char **grown = realloc(t->cells, (t->rows + 1) * t->cols * sizeof(*grown));
    if (!grown) {
        t->oom = true;
        return;
    }
    t->cells = grown;
    va_list ap;
    va_start(ap, t);
    for (size_t c = 0; c < t->cols; c++) {
        const char *s = va_arg(ap, const char *);
        char *copy = strdup(s ? s : "");
        t->cells[t->rows * t->cols + c] = copy;
        t->oom |= !copy;
    }
    va_end(ap);
    t->rows++;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->rows * t->cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    *t = (table){ .cols = t->cols };
}

/* Prints and frees the table: columns two spaces apart, the last one not
 * padded (it holds free text: messages, URLs). `width` (t->cols entries)
 * holds the columns' widths so far and grows to this table's widest
 * cells. Returns false when a cell could not be copied (out of memory:
 * the output says it is incomplete). */
static bool table_print_widths(FILE *f, table *t, size_t *width)
{
    RB_ASSERT(t->cols <= RENDER_MAX_COLS);
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            size_t w = s ? strlen(s) : 0;
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            if (c + 1 == t->cols) {
                fprintf(f, "%s\n", s ? s : "");
            } else {
                fprintf(f, "%-*s  ", (int)width[c], s ? s : "");
            }
        }
    }
    bool whole = !t->oom;
    table_free(t);
    if (!whole) {
        fprintf(f, "(output incomplete: out of memory)\n");
    }
    return whole;
}

static void table_print(FILE *f, table *t)
{
    size_t width[RENDER_MAX_COLS] = { 0 };
    table_print_widths(f, t, width);
}

/* Prints a page's table (its header too, on the first page) into the
 * listing; `rows` is the page's count of rows. */
static int stream_table(render_stream *s, table *t, size_t rows)
{
    if (s->error) {
        table_free(t);
        return s->error;
    }
    if (!table_print_widths(s->f, t, s->width)) {
        s->error = -ENOMEM;
    }
    s->started = true;
    s->rows += rows;
    if ((fflush(s->f) == EOF || ferror(s->f)) && !s->error) {
        s->error = -EIO;
    }
    return s->error;
}

static void macs_text(const Rackboot__V1__Host *h, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t m = 0; m < h->n_macs && off < size; m++) {
        char mac[FORMAT_MAC_LEN];
        if (h->macs[m].len != 6) {
            continue;
        }
        format_mac(h->macs[m].data, mac);
        int w = snprintf(buf + off, size - off, "%s%s", m ? "," : "", mac);
        if (w < 0) {
            break;
        }
        off += (size_t)w;
    }
}

/* The POWER cell: "-" without a BMC, "unknown" before its state was
 * read, else the state last read ('hosts show' says when). */
static const char *host_power(const Rackboot__V1__Host *h)
{
    if (strempty(h->bmc_url)) {
        return "-";
    }
    const char *st = rbproto_power_state_to_string(h->power_state);
    return st ? st : "unknown";
}

int render_hosts_page(render_stream *s, const Rackboot__V1__HostList *l)
{
    if (output_structured(s->format)) {
        return stream_structured(s, render_hosts_json(l), RENDER_NAME_HOSTS);
    }
    bool wide = s->format == OUTPUT_WIDE;
    table t = { .cols = wide ? 10 : 7 };
    if (!s->started && wide) {
        table_add(&t, "NAME", "RACK", "ADDRESS", "GATEWAY", "HOSTNAME", "FIRMWARE", "DUID", "BMC",
                  "POWER", "MACS");
    } else if (!s->started) {
        table_add(&t, "NAME", "RACK", "ADDRESS", "GATEWAY", "HOSTNAME", "POWER", "MACS");
    }
    for (size_t i = 0; i < l->n_hosts; i++) {
        const Rackboot__V1__Host *h = l->hosts[i];
        char addr[INET6_ADDRSTRLEN + 8], gw[INET6_ADDRSTRLEN], a[INET6_ADDRSTRLEN];
        char macs[RBPROTO_MAX_MACS * FORMAT_MAC_LEN + 1];
        snprintf(addr, sizeof(addr), "%s/%u", render_addr(&h->address, a), h->prefix_length);
        render_addr(&h->gateway, gw);
        macs_text(h, macs, sizeof(macs));
        const char *hostname = strempty(h->hostname) ? "-" : h->hostname;
        if (wide) {
            char duid[2 * RBPROTO_DUID_MAX + 1] = "-";
            if (h->duid.len > 0 && h->duid.len <= RBPROTO_DUID_MAX) {
                hex_encode(h->duid.data, h->duid.len, duid);
            }
            const char *fw = rbproto_firmware_to_string(h->firmware);
            table_add(&t, h->name, h->rack, addr, gw[0] ? gw : "-", hostname, fw ? fw : "-", duid,
                      strempty(h->bmc_url) ? "-" : h->bmc_url, host_power(h), macs);
        } else {
            table_add(&t, h->name, h->rack, addr, gw[0] ? gw : "-", hostname, host_power(h), macs);
        }
    }
    return stream_table(s, &t, l->n_hosts);
}

void render_hosts_text(FILE *f, const Rackboot__V1__HostList *l)
{
    render_stream s;
    render_stream_init(&s, f, OUTPUT_TABLE);
    render_hosts_page(&s, l);
    render_stream_end(&s);
}

void render_host_detail_text(FILE *f, const Rackboot__V1__Host *h)
{
    char a[INET6_ADDRSTRLEN];
    fprintf(f, "name:      %s\n", h->name);
    fprintf(f, "rack:      %s\n", h->rack);
    for (size_t m = 0; m < h->n_macs; m++) {
        char mac[FORMAT_MAC_LEN] = "?";
        if (h->macs[m].len == 6) {
            format_mac(h->macs[m].data, mac);
        }
        fprintf(f, "mac:       %s\n", mac);
    }
    fprintf(f, "address:   %s/%u\n", render_addr(&h->address, a), h->prefix_length);
    render_addr(&h->gateway, a);
    fprintf(f, "gateway:   %s\n", a[0] ? a : "- (from router advertisements)");
    fprintf(f, "hostname:  %s\n", strempty(h->hostname) ? h->name : h->hostname);
    if (h->duid.len > 0) {
        char hex[2 * RBPROTO_DUID_MAX + 1];
        if (h->duid.len <= RBPROTO_DUID_MAX) {
            hex_encode(h->duid.data, h->duid.len, hex);
            fprintf(f, "duid:      %s\n", hex);
        }
    }
    const char *fw = rbproto_firmware_to_string(h->firmware);
    fprintf(f, "firmware:  %s\n", fw ? fw : "- (not declared)");
    if (strempty(h->bmc_url)) {
        fprintf(f, "bmc:       -\n");
        return;
    }
    char when[RFC3339_MS_LEN + 8];
    fprintf(f, "bmc:       %s\n", h->bmc_url);
    fprintf(f, "bmc_user:  %s\n", strempty(h->bmc_user) ? "-" : h->bmc_user);
    fprintf(f, "bmc_password: %s\n", host_password_set(h) ? "set" : "not set");
    if (h->power_updated_unix_ms) {
        fprintf(f, "power:     %s (read %s)\n", host_power(h),
                render_time(h->power_updated_unix_ms, when, sizeof(when)));
    } else {
        fprintf(f, "power:     %s (never read)\n", host_power(h));
    }
}

/* ---- power commands ----------------------------------------------------- */

const char *render_power_result(const Rackboot__V1__PowerRow *r, bool gave_up)
{
    if (r->done) {
        return r->ok ? "ok" : "failed";
    }
    return gave_up ? "timed_out" : "queued";
}

json_t *render_power_json(const Rackboot__V1__PowerList *l, bool gave_up)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n_rows; i++) {
        const Rackboot__V1__PowerRow *r = l->rows[i];
        json_array_append_new(
            a, json_pack("{s:o, s:s, s:o, s:b, s:b, s:s, s:o, s:o, s:o}", "id", jstr(r->id), "host",
                         r->host, "action", jstr(rbproto_power_action_to_string(r->action)), "done",
                         (int)r->done, "ok", (int)(r->done && r->ok), "result",
                         render_power_result(r, gave_up), "power_state",
                         jstr(rbproto_power_state_to_string(r->power_state)), "message",
                         jstr(r->message), "updated_at", jtime(r->updated_unix_ms)));
    }
    return a;
}

void render_power_text(FILE *f, const Rackboot__V1__PowerList *l, bool gave_up)
{
    table t = { .cols = 5 };
    table_add(&t, "HOST", "ACTION", "RESULT", "POWER", "MESSAGE");
    for (size_t i = 0; i < l->n_rows; i++) {
        const Rackboot__V1__PowerRow *r = l->rows[i];
        const char *action = rbproto_power_action_to_string(r->action);
        const char *st = rbproto_power_state_to_string(r->power_state);
        table_add(&t, r->host, action ? action : "?", render_power_result(r, gave_up),
                  st ? st : "-", r->message);
    }
    table_print(f, &t);
}

static const char *ago(uint64_t then_ms, uint64_t now_ms, char *buf, size_t size)
{
    if (then_ms == 0) {
        return "never";
    }
    uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
    if (s < 120) {
        snprintf(buf, size, "%" PRIu64 "s ago", s);
    } else if (s < 7200) {
        snprintf(buf, size, "%" PRIu64 "m ago", s / 60);
    } else if (s < 172800) {
        snprintf(buf, size, "%" PRIu64 "h ago", s / 3600);
    } else {
        snprintf(buf, size, "%" PRIu64 "d ago", s / 86400);
    }
    return buf;
}

/* Bytes as `df -h` writes them: "1.2G", "20G", "512M". */
static const char *human_bytes(uint64_t n, char *buf, size_t size)
{
    static const char units[] = "BKMGTP";
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u < sizeof(units) - 2) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, size, "%uB", (unsigned)n); /* n < 1024 */
    } else {
        snprintf(buf, size, v >= 10 ? "%.0f%c" : "%.1f%c", v, units[u]);
    }
    return buf;
}

/* "1.2G/20G", "1.2G" without a limit, "-" before the agent reported. */
static const char *cache_use(uint64_t status_ms, uint64_t bytes, uint64_t limit_bytes, char *buf,
                             size_t size)
{
    char used[16], limit[16];
    if (status_ms == 0) {
        snprintf(buf, size, "-");
    } else if (limit_bytes == 0) {
        snprintf(buf, size, "%s", human_bytes(bytes, used, sizeof(used)));
    } else {
        snprintf(buf, size, "%s/%s", human_bytes(bytes, used, sizeof(used)),
                 human_bytes(limit_bytes, limit, sizeof(limit)));
    }
    return buf;
}

/* One line of the racks table: the rack's (hosts, active) on its first
 * agent's line only. */
static void rack_line(table *t, const char *rack, const char *agent, const char *version,
                      uint64_t last_seen_ms, uint64_t acked, uint64_t generation, const char *cache,
                      const char *hosts, const char *active, uint64_t now_ms)
{
    char seen[32], gen[48];
    snprintf(gen, sizeof(gen), "%" PRIu64 "/%" PRIu64 "%s", acked, generation,
             acked == generation ? "" : " (behind)");
    table_add(t, rack, strempty(agent) ? "-" : agent, strempty(version) ? "-" : version,
              ago(last_seen_ms, now_ms, seen, sizeof(seen)), gen, cache, hosts, active);
}

void render_racks_text(FILE *f, const Rackboot__V1__RackList *l, uint64_t now_ms)
{
    table t = { .cols = 8 };
    table_add(&t, "RACK", "AGENT", "VERSION", "LAST SEEN", "GENERATION", "CACHE", "HOSTS",
              "ACTIVE");
    for (size_t i = 0; i < l->n_racks; i++) {
        const Rackboot__V1__RackRow *r = l->racks[i];
        char hosts[16], active[16], cache[40];
        snprintf(hosts, sizeof(hosts), "%u", r->hosts);
        snprintf(active, sizeof(active), "%u", r->active_installs);
        if (r->n_agents == 0) { /* none yet, or a controller that lists none */
            rack_line(&t, r->rack, r->agent, r->agent_version, r->last_seen_unix_ms,
                      r->acked_generation, r->generation,
                      cache_use(r->status_unix_ms, r->cache_bytes, r->cache_limit_bytes, cache,
                                sizeof(cache)),
                      hosts, active, now_ms);
        }
        /* A redundant pair shows as two lines, the rack named on the
         * first. */
        for (size_t k = 0; k < r->n_agents; k++) {
            const Rackboot__V1__AgentRow *g = r->agents[k];
            rack_line(&t, k == 0 ? r->rack : "", g->agent, g->agent_version, g->last_seen_unix_ms,
                      g->acked_generation, r->generation,
                      cache_use(g->status_unix_ms, g->cache_bytes, g->cache_limit_bytes, cache,
                                sizeof(cache)),
                      k == 0 ? hosts : "", k == 0 ? active : "", now_ms);
        }
    }
    table_print(f, &t);
}

static const Rackboot__V1__Image *find_kind(const Rackboot__V1__Profile *p,
                                            Rackboot__V1__ImageKind kind)
{
    for (size_t i = 0; i < p->n_images; i++) {
        if (p->images[i]->kind == kind) {
            return p->images[i];
        }
    }
    return NULL;
}

void render_profiles_text(FILE *f, const Rackboot__V1__ProfileList *l)
{
    table t = { .cols = 6 };
    table_add(&t, "NAME", "IMAGES", "IP", "OVERLAY", "KICKSTART", "KERNEL");
    for (size_t i = 0; i < l->n_profiles; i++) {
        const Rackboot__V1__Profile *p = l->profiles[i];
        const Rackboot__V1__Image *k = find_kind(p, RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL);
        char n[24], ks[16] = "-"; /* n: any size_t in decimal */
        snprintf(n, sizeof(n), "%zu", p->n_images);
        if (p->kickstart_sha256.len == 32) {
            char hex[65];
            hex_encode(p->kickstart_sha256.data, 32, hex);
            snprintf(ks, sizeof(ks), "sha256:%.8s", hex);
        }
        const char *ip = rbproto_ip_mode_to_string(p->ip_mode);
        table_add(&t, p->name, n, ip ? ip : "?", p->overlay ? "yes" : "no", ks, k ? k->url : "-");
    }
    table_print(f, &t);
}

static void image_line(FILE *f, const Rackboot__V1__Image *img)
{
    char hex[65] = "?";
    if (img->sha256.len == 32) {
        hex_encode(img->sha256.data, 32, hex);
    }
    const char *kind = rbproto_image_kind_to_string(img->kind);
    fprintf(f, "  %-8s %s %s sha256=%s\n", kind ? kind : "?", img->name, img->url, hex);
}

void render_profile_detail_text(FILE *f, const Rackboot__V1__Profile *p)
{
    const char *ip = rbproto_ip_mode_to_string(p->ip_mode);
    fprintf(f, "name:       %s\n", p->name);
    if (p->kind != RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_INSTALL) {
        fprintf(f, "kind:       %s\n", profile_kind_name(p->kind));
        for (size_t i = 0; i < p->n_ssh_authorized_keys; i++) {
            fprintf(f, "ssh key:    %s\n", p->ssh_authorized_keys[i]);
        }
    }
    if (p->kind == RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE) {
        fprintf(f, "user_data:  %s\n", strempty(p->user_data_template) ? "-" : "yes");
    }
    const char *uefi = rbproto_uefi_boot_to_string(p->uefi_boot);
    fprintf(f, "ip:         %s\n", ip ? ip : "?");
    fprintf(f, "uefi_boot:  %s\n", uefi ? uefi : "?");
    fprintf(f, "overlay:    %s\n", p->overlay ? "yes" : "no");
    fprintf(f, "keep_ra:    %s\n", p->keep_ra ? "yes" : "no");
    fprintf(f, "source_check: %s\n", p->any_source ? "no" : "yes");
    fprintf(f, "cmdline:    %s\n", strempty(p->kernel_args) ? "-" : p->kernel_args);
    fprintf(f, "root_device: %s\n", strempty(p->root_device) ? "-" : p->root_device);
    fprintf(f, "images:\n");
    for (size_t i = 0; i < p->n_images; i++) {
        image_line(f, p->images[i]);
    }
    if (p->kickstart_sha256.len == 32) {
        char hex[65];
        hex_encode(p->kickstart_sha256.data, 32, hex);
        fprintf(f, "kickstart:  sha256=%s\n", hex);
        if (!strempty(p->kickstart_template)) {
            size_t n = strlen(p->kickstart_template);
            fprintf(f, "----\n%s%s----\n", p->kickstart_template,
                    p->kickstart_template[n - 1] == '\n' ? "" : "\n");
        }
    } else {
        fprintf(f, "kickstart:  -\n");
    }
}

void render_images_text(FILE *f, const Rackboot__V1__ImageList *l)
{
    table t = { .cols = 6 };
    table_add(&t, "PROFILE", "KIND", "NAME", "SIZE", "SHA256", "URL");
    for (size_t i = 0; i < l->n_images; i++) {
        const Rackboot__V1__Image *img = l->images[i]->image;
        char size[24] = "-", hex[65] = "?";
        if (img->size) {
            snprintf(size, sizeof(size), "%" PRIu64, img->size);
        }
        if (img->sha256.len == 32) {
            hex_encode(img->sha256.data, 32, hex);
            hex[12] = '\0';
        }
        const char *kind = rbproto_image_kind_to_string(img->kind);
        table_add(&t, l->images[i]->profile, kind ? kind : "?", img->name, size, hex, img->url);
    }
    table_print(f, &t);
}

int render_status_page(render_stream *s, const Rackboot__V1__StatusList *l)
{
    if (output_structured(s->format)) {
        return stream_structured(s, render_status_json(l), RENDER_NAME_STATUS);
    }
    bool wide = s->format == OUTPUT_WIDE;
    table t = { .cols = wide ? 10 : 8 };
    if (!s->started && wide) {
        table_add(&t, "HOST", "RACK", "STATE", "PHASE", "%", "PROFILE", "INSTALL", "ATTEMPT",
                  "UPDATED", "MESSAGE");
    } else if (!s->started) {
        table_add(&t, "HOST", "RACK", "STATE", "PHASE", "%", "PROFILE", "UPDATED", "MESSAGE");
    }
    for (size_t i = 0; i < l->n_rows; i++) {
        const Rackboot__V1__StatusRow *r = l->rows[i];
        char pct[8], when[RFC3339_MS_LEN + 8], attempt[12];
        snprintf(pct, sizeof(pct), "%u", r->percent);
        snprintf(attempt, sizeof(attempt), "%u", r->attempt);
        const char *rack = strempty(r->rack) ? "-" : r->rack;
        const char *profile = strempty(r->profile) ? "-" : r->profile;
        render_time(r->updated_unix_ms, when, sizeof(when));
        if (wide) {
            table_add(&t, r->host, rack, render_state(r->state), render_phase(r->phase), pct,
                      profile, strempty(r->install_id) ? "-" : r->install_id,
                      r->attempt ? attempt : "-", when, r->message);
        } else {
            table_add(&t, r->host, rack, render_state(r->state), render_phase(r->phase), pct,
                      profile, when, r->message);
        }
    }
    return stream_table(s, &t, l->n_rows);
}

void render_status_text(FILE *f, const Rackboot__V1__StatusList *l)
{
    render_stream s;
    render_stream_init(&s, f, OUTPUT_TABLE);
    render_status_page(&s, l);
    render_stream_end(&s);
}

int render_events_page(render_stream *s, const Rackboot__V1__EventList *l)
{
    if (output_structured(s->format)) {
        return stream_structured(s, render_events_json(l), RENDER_NAME_EVENTS);
    }
    table t = { .cols = 6 };
    if (!s->started) {
        table_add(&t, "SEQ", "TIME", "HOST", "PHASE", "%", "MESSAGE");
    }
    for (size_t i = 0; i < l->n_events; i++) {
        const Rackboot__V1__EventRow *e = l->events[i];
        char seq[24], pct[8], when[RFC3339_MS_LEN + 8];
        snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
        snprintf(pct, sizeof(pct), "%u", e->percent);
        table_add(&t, seq, render_time(e->time_unix_ms, when, sizeof(when)), e->host,
                  render_phase(e->phase), pct, e->message);
    }
    return stream_table(s, &t, l->n_events);
}

void render_events_text(FILE *f, const Rackboot__V1__EventList *l)
{
    render_stream s;
    render_stream_init(&s, f, OUTPUT_TABLE);
    render_events_page(&s, l);
    render_stream_end(&s);
}

/* "web1 web2 web3" for a few names, "web1 web2 web3 (+997)" beyond. */
static char *names_cell(char **names, size_t n, uint32_t total)
{
    enum { SHOWN = 3 };
    size_t len = 32;
    for (size_t i = 0; i < n && i < SHOWN; i++) {
        len += strlen(names[i]) + 1;
    }
    char *out = malloc(len);
    if (!out) {
        return NULL;
    }
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < SHOWN; i++) {
        at += (size_t)snprintf(out + at, len - at, "%s%s", i ? " " : "", names[i]);
    }
    size_t shown = n < SHOWN ? n : SHOWN;
    if (total > shown) {
        snprintf(out + at, len - at, "%s(+%zu)", at ? " " : "", (size_t)total - shown);
    }
    if (!out[0]) {
        snprintf(out, len, "-");
    }
    return out;
}

void render_audit_text(FILE *f, const Rackboot__V1__AuditList *l)
{
    table t = { .cols = 5 };
    table_add(&t, "TIME", "WHO", "WHAT", "HOSTS", "RESULT");
    for (size_t i = 0; i < l->n_rows; i++) {
        const Rackboot__V1__AuditRow *r = l->rows[i];
        char when[RFC3339_MS_LEN + 8];
        _cleanup_free_ char *hosts = names_cell(r->hosts, r->n_hosts, r->host_count);
        _cleanup_free_ char *what = NULL;
        if (r->n_profiles > 0 &&
            asprintf(&what, "%s %s", r->verb, r->n_profiles == 1 ? r->profiles[0] : "...") < 0) {
            what = NULL;
        }
        table_add(&t, render_time(r->time_unix_ms, when, sizeof(when)), r->who,
                  what ? what : r->verb, hosts ? hosts : "?", r->result);
    }
    table_print(f, &t);
}
