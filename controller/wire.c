#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model_pb.h"
#include "util.h"

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct wire_arena {
    block *head;
    ProtobufCAllocator allocator; /* wire_alloc(), for builders elsewhere */
    bool failed;
};

#define BLOCK_SIZE (64u << 10)

static void *arena_alloc(void *a, size_t size)
{
    return wire_alloc(a, size);
}

/* Arena memory is freed with the arena, all at once. */
static void arena_free(void *a, void *p)
{
}

wire_arena *wire_arena_new(void)
{
    wire_arena *a = calloc(1, sizeof(wire_arena));
    if (a) {
        a->allocator =
            (ProtobufCAllocator){ .alloc = arena_alloc, .free = arena_free, .allocator_data = a };
    }
    return a;
}

wire_arena *wire_arena_free(wire_arena *a)
{
    if (!a) {
        return NULL;
    }
    while (a->head) {
        block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    free(a);
    return NULL;
}

bool wire_arena_failed(const wire_arena *a)
{
    return a->failed;
}

void *wire_alloc(wire_arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < size) {
        size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
        block *b = malloc(sizeof(*b) + cap);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

char *wire_strdup(wire_arena *a, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *p = wire_alloc(a, n + 1);
    if (p && n) {
        memcpy(p, s, n);
    }
    return p ? p : RB_UNCONST("");
}

static uint8_t *wire_memdup(wire_arena *a, const void *data, size_t len)
{
    uint8_t *p = wire_alloc(a, len ? len : 1);
    if (p && len) {
        memcpy(p, data, len);
    }
    return p;
}

void wire_append_(wire_arena *a, size_t *n, void ***items, void *item)
{
    if (!item) {
        a->failed = true;
        return;
    }
    /* Capacities are powers of two: grow when n is one. */
    if ((*n & (*n - 1)) == 0 || *n == 0) {
        size_t cap = *n ? *n * 2 : 4;
        void **grown = wire_alloc(a, cap * sizeof(*grown));
        if (!grown) {
            return;
        }
        if (*n) {
            memcpy(grown, *items, *n * sizeof(*grown));
        }
        *items = grown;
    }
    (*items)[(*n)++] = item;
}

Rackboot__V1__Host *wire_host(wire_arena *a, const store_host *h)
{
    Rackboot__V1__Host *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__host__init(m);
    m->name = wire_strdup(a, h->name);
    m->rack = wire_strdup(a, h->rack);
    m->macs = wire_alloc(a, h->n_macs * sizeof(*m->macs));
    if (m->macs) {
        for (size_t i = 0; i < h->n_macs; i++) {
            m->macs[i].data = wire_memdup(a, h->macs[i], 6);
            m->macs[i].len = 6;
        }
        m->n_macs = h->n_macs;
    }
    m->address.data = wire_memdup(a, h->address, 16);
    m->address.len = 16;
    m->prefix_length = h->prefix_length;
    if (h->has_gateway) {
        m->gateway.data = wire_memdup(a, h->gateway, 16);
        m->gateway.len = 16;
    }
    m->hostname = wire_strdup(a, h->hostname);
    if (h->duid_len) {
        m->duid.data = wire_memdup(a, h->duid, h->duid_len);
        m->duid.len = h->duid_len;
    }
    /* Never the password: a listing says whether one is set. */
    m->bmc_url = wire_strdup(a, h->bmc_url);
    m->bmc_user = wire_strdup(a, h->bmc_user);
    m->bmc_password_set = h->bmc_password_set;
    m->firmware = (Rackboot__V1__Firmware)h->firmware;
    m->power_state = (Rackboot__V1__PowerState)h->power_state;
    m->power_updated_unix_ms = h->power_updated_ms;
    return m;
}

Rackboot__V1__Bmc *wire_bmc(wire_arena *a, const store_bmc *b)
{
    Rackboot__V1__Bmc *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__bmc__init(m);
    m->host = wire_strdup(a, b->host);
    m->url = wire_strdup(a, b->url);
    m->user = wire_strdup(a, b->user);
    m->password = wire_strdup(a, b->password);
    m->firmware = (Rackboot__V1__Firmware)b->firmware;
    return m;
}

Rackboot__V1__PowerCommand *wire_power_command(wire_arena *a, const store_power *p)
{
    Rackboot__V1__PowerCommand *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__power_command__init(m);
    m->id = wire_strdup(a, p->id);
    m->host = wire_strdup(a, p->host);
    m->action = (Rackboot__V1__PowerAction)p->action;
    m->boot_device = (Rackboot__V1__BootDevice)p->boot_device;
    m->efi = p->efi;
    m->install_id = wire_strdup(a, p->install_id);
    return m;
}

Rackboot__V1__PowerRow *wire_power_row(wire_arena *a, const store_power *p)
{
    Rackboot__V1__PowerRow *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__power_row__init(m);
    m->id = wire_strdup(a, p->id);
    m->host = wire_strdup(a, p->host);
    m->action = (Rackboot__V1__PowerAction)p->action;
    m->done = p->done;
    m->ok = p->ok;
    m->power_state = (Rackboot__V1__PowerState)p->power_state;
    m->message = wire_strdup(a, p->message);
    m->updated_unix_ms = p->updated_ms;
    return m;
}

Rackboot__V1__Profile *wire_profile(wire_arena *a, const model_profile *p)
{
    /* The hash goes with or without the template (listings leave the text
     * out); a profile without a kickstart has the hash of "" and sends none. */
    static const uint8_t empty_sha256[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
    };
    bool has_kickstart = memcmp(p->kickstart_sha256, empty_sha256, 32) != 0;
    Rackboot__V1__Profile *m = NULL;
    if (model_profile_to_pb(p, has_kickstart, &a->allocator, &m) < 0) {
        a->failed = true;
        return NULL;
    }
    return m;
}

Rackboot__V1__StatusRow *wire_status(wire_arena *a, const store_status *st)
{
    Rackboot__V1__StatusRow *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__status_row__init(m);
    m->host = wire_strdup(a, st->host);
    m->rack = wire_strdup(a, st->rack);
    m->install_id = wire_strdup(a, st->install_id);
    m->profile = wire_strdup(a, st->profile);
    m->state = st->state ? install_state_to_proto(st->state)
                         : RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE;
    m->phase = st->phase;
    m->percent = st->percent;
    m->updated_unix_ms = st->updated_ms;
    m->attempt = st->attempt;
    m->message = wire_strdup(a, st->message);
    return m;
}

Rackboot__V1__EventRow *wire_event_row(wire_arena *a, const store_event_row *e)
{
    Rackboot__V1__EventRow *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__event_row__init(m);
    m->seq = e->seq;
    m->time_unix_ms = e->time_ms;
    m->host = wire_strdup(a, e->host);
    m->install_id = wire_strdup(a, e->install_id);
    m->phase = e->phase;
    m->percent = e->percent;
    m->message = wire_strdup(a, e->message);
    return m;
}

/* "a b c" → a repeated string field. */
static void split_names(wire_arena *a, const char *text, size_t *n, char ***items)
{
    while (text && *text) {
        size_t len = strcspn(text, " ");
        char *name = wire_alloc(a, len + 1);
        if (!name) {
            return;
        }
        memcpy(name, text, len);
        wire_append(a, *n, *items, name);
        text += len + (text[len] == ' ');
    }
}

Rackboot__V1__AuditRow *wire_audit_row(wire_arena *a, const store_audit *row)
{
    Rackboot__V1__AuditRow *m = wire_alloc(a, sizeof(*m));
    if (!m) {
        return NULL;
    }
    rackboot__v1__audit_row__init(m);
    m->seq = row->seq;
    m->time_unix_ms = row->time_ms;
    m->who = wire_strdup(a, row->who);
    m->verb = wire_strdup(a, row->verb);
    split_names(a, row->hosts_text, &m->n_hosts, &m->hosts);
    m->host_count = row->host_count > m->n_hosts ? row->host_count : (uint32_t)m->n_hosts;
    split_names(a, row->profiles_text, &m->n_profiles, &m->profiles);
    m->ok = row->ok;
    m->result = wire_strdup(a, row->result);
    return m;
}

int wire_to_store_host(const Rackboot__V1__Host *m, store_host *ret, const char **ret_why)
{
    store_host h = { 0 };
    if (strlen(m->name) > STORE_NAME_MAX || strlen(m->rack) > STORE_NAME_MAX ||
        strlen(m->hostname) > STORE_DNS_NAME_MAX) {
        *ret_why = "a name is too long";
        return -EINVAL;
    }
    if (m->n_macs == 0 || m->n_macs > STORE_MACS_MAX) {
        *ret_why = "a host needs 1 to 16 MACs";
        return -EINVAL;
    }
    strcpy(h.name, m->name);
    strcpy(h.rack, m->rack);
    strcpy(h.hostname, m->hostname);
    for (size_t i = 0; i < m->n_macs; i++) {
        memcpy(h.macs[i], m->macs[i].data, 6); /* rbproto checked the sizes */
    }
    h.n_macs = m->n_macs;
    memcpy(h.address, m->address.data, 16);
    h.prefix_length = m->prefix_length ? m->prefix_length : 64;
    if (m->gateway.len == 16) {
        h.has_gateway = true;
        memcpy(h.gateway, m->gateway.data, 16);
    }
    /* rbproto checked the BMC fields' forms and lengths against model/bmc.h. */
    snprintf(h.bmc_url, sizeof(h.bmc_url), "%s", m->bmc_url);
    snprintf(h.bmc_user, sizeof(h.bmc_user), "%s", m->bmc_user);
    snprintf(h.bmc_password, sizeof(h.bmc_password), "%s", m->bmc_password);
    h.firmware = m->firmware == RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI   ? MODEL_FIRMWARE_UEFI
                 : m->firmware == RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS ? MODEL_FIRMWARE_BIOS
                                                                        : MODEL_FIRMWARE_UNKNOWN;
    *ret = h;
    return 0;
}

Rackboot__V1__Intent *wire_intent(wire_arena *a, const store_intent *in)
{
    Rackboot__V1__Intent *m = wire_alloc(a, sizeof(*m));
    Rackboot__V1__Host *h = wire_host(a, in->host);
    if (!m || !h) {
        return NULL;
    }
    rackboot__v1__intent__init(m);
    m->install_id = wire_strdup(a, in->install_id);
    m->token = wire_strdup(a, in->token);
    m->attempt = in->attempt;
    m->profile = wire_strdup(a, in->profile->name);
    m->host = h->name;
    m->n_macs = h->n_macs;
    m->macs = h->macs;
    m->duid = h->duid;
    m->address = h->address;
    m->prefix_length = h->prefix_length;
    m->gateway = h->gateway;
    m->hostname = *h->hostname ? h->hostname : h->name;
    return wire_arena_failed(a) ? NULL : m;
}
