/* proto/rbproto: every envelope survives a round trip with realistic
 * content; malformed bytes, oversized input and allocation bombs are refused
 * with the right error; each validation rule refuses exactly what it names.
 *
 * Messages are built in a per-test arena (never freed through protobuf-c),
 * so a builder can point strings at whatever it likes. With
 * RBPROTO_WRITE_CORPUS=DIR the seed corpus of fuzz_proto is (re)written to
 * DIR from the same builders. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model_pb.h"
#include "rbproto-internal.h"
#include "rbproto.h"

/* ---- Arena ------------------------------------------------------------- */

static void **arena;
static size_t arena_len, arena_cap;

static void *talloc(size_t n)
{
    if (arena_len == arena_cap) {
        arena_cap = arena_cap ? arena_cap * 2 : 1024;
        arena = realloc(arena, arena_cap * sizeof(*arena));
        assert_non_null(arena);
    }
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    arena[arena_len++] = p;
    return p;
}

static int arena_free(void **state)
{
    for (size_t i = 0; i < arena_len; i++) {
        free(arena[i]);
    }
    free(arena);
    arena = NULL;
    arena_len = arena_cap = 0;
    return 0;
}

static char *tstr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *tstr(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *s = talloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static ProtobufCBinaryData tbytes(const void *p, size_t n)
{
    uint8_t *d = talloc(n);
    memcpy(d, p, n);
    return (ProtobufCBinaryData){ .len = n, .data = d };
}

#define TNEW(type, init)                                                                           \
    ({                                                                                             \
        type *m_ = talloc(sizeof(type));                                                           \
        init(m_);                                                                                  \
        m_;                                                                                        \
    })

#define TARRAY(type, n) ((type *)talloc(sizeof(type) * (n)))

/* ---- Builders of realistic messages ------------------------------------ */

static ProtobufCBinaryData mac_of(unsigned i)
{
    uint8_t mac[6] = { 0x52, 0x54, 0x00, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
    return tbytes(mac, sizeof(mac));
}

/* 2001:db8:a1::/64, hosts from ::100. */
static ProtobufCBinaryData addr_of(unsigned i)
{
    uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xa1 };
    a[12] = (uint8_t)((0x100 + i) >> 24);
    a[13] = (uint8_t)((0x100 + i) >> 16);
    a[14] = (uint8_t)((0x100 + i) >> 8);
    a[15] = (uint8_t)(0x100 + i);
    return tbytes(a, sizeof(a));
}

static ProtobufCBinaryData addr_last(uint8_t last)
{
    uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xa1 };
    a[15] = last;
    return tbytes(a, sizeof(a));
}

static ProtobufCBinaryData sha_of(uint8_t seed)
{
    uint8_t h[32];
    for (size_t i = 0; i < sizeof(h); i++) {
        h[i] = (uint8_t)(seed * 31 + i);
    }
    return tbytes(h, sizeof(h));
}

static Rackboot__V1__Image *make_image(const char *dir, const char *name,
                                       Rackboot__V1__ImageKind kind, uint64_t size)
{
    Rackboot__V1__Image *m = TNEW(Rackboot__V1__Image, rackboot__v1__image__init);
    m->name = tstr("%s", name);
    m->kind = kind;
    m->url = tstr("https://mirror.example.net/%s/images/pxeboot/%s", dir, name);
    m->sha256 = sha_of((uint8_t)(kind + size));
    m->size = size;
    return m;
}

/* A profile with a kickstart template of about template_kib KiB. */
static Rackboot__V1__Profile *make_profile(const char *name, size_t template_kib)
{
    Rackboot__V1__Profile *m = TNEW(Rackboot__V1__Profile, rackboot__v1__profile__init);
    m->name = tstr("%s", name);
    m->n_images = 3;
    m->images = TARRAY(Rackboot__V1__Image *, 3);
    m->images[0] =
        make_image(name, "vmlinuz", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL, 13000000);
    m->images[1] =
        make_image(name, "initrd.img", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD, 110000000);
    m->images[2] =
        make_image(name, "squashfs.img", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2, 800000000);
    m->kernel_args = tstr("console=ttyS0,115200n8 inst.text ipv6.disable=0");
    size_t cap = template_kib * 1024 + 64;
    char *t = talloc(cap);
    size_t off =
        (size_t)snprintf(t, cap, "# %s kickstart\ntext\nnetwork --hostname={{hostname}}\n", name);
    for (unsigned line = 0; off + 64 < cap; line++) {
        off += (size_t)snprintf(t + off, cap - off, "%%post --log=/root/p%u.log\n\techo é %u\n",
                                line, line);
    }
    m->kickstart_template = t;
    m->kickstart_sha256 = sha_of(7);
    m->overlay = true;
    m->ip_mode = RACKBOOT__V1__IP_MODE__IP_MODE_STATIC;
    m->keep_ra = true;
    return m;
}

static Rackboot__V1__Intent *make_intent(unsigned i, const char *profile)
{
    Rackboot__V1__Intent *m = TNEW(Rackboot__V1__Intent, rackboot__v1__intent__init);
    m->install_id = tstr("6f1c2a3e-0000-4000-8000-%012u", i);
    m->host = tstr("web%u", i);
    m->n_macs = 2;
    m->macs = TARRAY(ProtobufCBinaryData, 2);
    m->macs[0] = mac_of(2 * i);
    m->macs[1] = mac_of(2 * i + 1);
    if (i % 7 == 0) {
        uint8_t duid[18] = { 0x00, 0x04, 0x11, 0x22, (uint8_t)(i >> 8), (uint8_t)i };
        m->duid = tbytes(duid, sizeof(duid)); /* DUID-UUID, RFC 6355 */
    }
    m->address = addr_of(i);
    m->prefix_length = 64;
    m->gateway = addr_last(1);
    m->hostname = tstr("web%u.a1.dc1.example.net", i);
    m->n_dns_servers = 2;
    m->dns_servers = TARRAY(ProtobufCBinaryData, 2);
    m->dns_servers[0] = addr_last(0x53);
    m->dns_servers[1] = addr_last(0x54);
    m->n_search = 2;
    m->search = TARRAY(char *, 2);
    m->search[0] = tstr("a1.dc1.example.net");
    m->search[1] = tstr("example.net");
    m->profile = tstr("%s", profile);
    m->token = tstr("tok_%08uAbCdEfGhIjKlMnOp", i);
    m->attempt = 1 + i % 3;
    return m;
}

static Rackboot__V1__SyncResponse *make_sync(size_t n_intents, size_t template_kib)
{
    Rackboot__V1__SyncResponse *m =
        TNEW(Rackboot__V1__SyncResponse, rackboot__v1__sync_response__init);
    m->rack = tstr("a1");
    m->generation = 42;
    m->n_profiles = 2;
    m->profiles = TARRAY(Rackboot__V1__Profile *, 2);
    m->profiles[0] = make_profile("el9", template_kib);
    m->profiles[1] = make_profile("el8-hpc", template_kib);
    m->n_intents = n_intents;
    m->intents = TARRAY(Rackboot__V1__Intent *, n_intents ? n_intents : 1);
    for (size_t i = 0; i < n_intents; i++) {
        m->intents[i] = make_intent((unsigned)i, i % 2 ? "el8-hpc" : "el9");
    }
    return m;
}

static Rackboot__V1__AgentReply *reply_sync(size_t n_intents, size_t template_kib)
{
    Rackboot__V1__AgentReply *e = TNEW(Rackboot__V1__AgentReply, rackboot__v1__agent_reply__init);
    e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY_SYNC;
    e->sync = make_sync(n_intents, template_kib);
    return e;
}

static Rackboot__V1__Event *make_event(uint64_t seq, Rackboot__V1__Phase phase)
{
    Rackboot__V1__Event *m = TNEW(Rackboot__V1__Event, rackboot__v1__event__init);
    m->seq = seq;
    m->time_unix_ms = 1764041657123ull + seq;
    m->install_id = tstr("6f1c2a3e-0000-4000-8000-%012u", (unsigned)(seq % 5));
    m->host = tstr("web%u", (unsigned)(seq % 5));
    m->mac = mac_of((unsigned)seq);
    m->phase = phase;
    if (phase == RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS) {
        m->percent = (uint32_t)(seq % 101);
    }
    if (phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED) {
        uint8_t duid[18] = { 0x00, 0x04, 0xaa, 0xbb, (uint8_t)seq };
        m->duid = tbytes(duid, sizeof(duid));
    }
    m->message = tstr("GET /boot/52:54:00:00:00:%02x.ipxe 200 — ok", (unsigned)(seq & 0xff));
    return m;
}

static Rackboot__V1__AgentRequest *request_events(size_t n)
{
    Rackboot__V1__AgentRequest *e =
        TNEW(Rackboot__V1__AgentRequest, rackboot__v1__agent_request__init);
    e->body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
    e->events = TNEW(Rackboot__V1__EventBatch, rackboot__v1__event_batch__init);
    e->events->n_events = n;
    e->events->events = TARRAY(Rackboot__V1__Event *, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        /* Not contiguous: the journal may have dropped some. */
        e->events->events[i] = make_event(1000 + 2 * i, (Rackboot__V1__Phase)(1 + i % 13));
    }
    return e;
}

static const char test_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBszCCAVmgAwIBAgIUQm9vdHN0cmFwIGNlcnQgZm9yIHRlc3RzMAoGCCqGSM49\n"
                               "BAMCMBMxETAPBgNVBAMMCHJhY2tib290MB4XDTI1MDEwMTAwMDAwMFoXDTI2MDEw\n"
                               "-----END CERTIFICATE-----\n";

static Rackboot__V1__AuthHello *make_hello(Rackboot__V1__Role role)
{
    Rackboot__V1__AuthHello *m = TNEW(Rackboot__V1__AuthHello, rackboot__v1__auth_hello__init);
    m->role = role;
    m->certificate_pem = tstr("%s", test_pem);
    m->software_version = tstr("rackboot 0.1.0");
    m->rack_claim = role == RACKBOOT__V1__ROLE__ROLE_AGENT ? tstr("a1") : tstr("%s", "");
    return m;
}

static Rackboot__V1__AgentRequest *request_hello(void)
{
    Rackboot__V1__AgentRequest *e =
        TNEW(Rackboot__V1__AgentRequest, rackboot__v1__agent_request__init);
    e->body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_HELLO;
    e->auth_hello = make_hello(RACKBOOT__V1__ROLE__ROLE_AGENT);
    return e;
}

static Rackboot__V1__AgentRequest *request_proof(void)
{
    static const uint8_t sig[71] = { 0x30, 0x45, 0x02, 0x21, 0x00, 0x9f };
    Rackboot__V1__AgentRequest *e =
        TNEW(Rackboot__V1__AgentRequest, rackboot__v1__agent_request__init);
    e->body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_PROOF;
    e->auth_proof = TNEW(Rackboot__V1__AuthProof, rackboot__v1__auth_proof__init);
    e->auth_proof->signature = tbytes(sig, sizeof(sig));
    return e;
}

static Rackboot__V1__AgentRequest *request_sync(void)
{
    Rackboot__V1__AgentRequest *e =
        TNEW(Rackboot__V1__AgentRequest, rackboot__v1__agent_request__init);
    e->body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
    e->sync = TNEW(Rackboot__V1__SyncRequest, rackboot__v1__sync_request__init);
    e->sync->held_generation = 42;
    e->sync->acked_generation = 41;
    e->sync->max_wait_ms = 30000;
    Rackboot__V1__AgentStatus *st =
        TNEW(Rackboot__V1__AgentStatus, rackboot__v1__agent_status__init);
    st->cache_bytes = 1288490189;        /* 1.2 GiB */
    st->cache_limit_bytes = 20ull << 30; /* 20 GiB */
    Rackboot__V1__RenderContext *rc =
        TNEW(Rackboot__V1__RenderContext, rackboot__v1__render_context__init);
    rc->base_url = tstr("%s", "http://[2001:db8:a1::2]:8080");
    rc->n_dns_servers = 2;
    rc->dns_servers = TARRAY(ProtobufCBinaryData, 2);
    rc->dns_servers[0] = addr_last(0x53);
    rc->dns_servers[1] = addr_last(0x54);
    rc->n_search = 1;
    rc->search = TARRAY(char *, 1);
    rc->search[0] = tstr("%s", "rack-a1.example.net");
    rc->gateway = addr_last(1);
    rc->deploy_ramdisk = true;
    st->render = rc;
    e->sync->status = st;
    return e;
}

static Rackboot__V1__AgentReply *reply_challenge(void)
{
    uint8_t nonce[32];
    for (size_t i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (uint8_t)(0xa5 ^ i);
    }
    Rackboot__V1__AgentReply *e = TNEW(Rackboot__V1__AgentReply, rackboot__v1__agent_reply__init);
    e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_CHALLENGE;
    e->auth_challenge = TNEW(Rackboot__V1__AuthChallenge, rackboot__v1__auth_challenge__init);
    e->auth_challenge->nonce = tbytes(nonce, sizeof(nonce));
    return e;
}

static Rackboot__V1__AuthResult *make_result(void)
{
    Rackboot__V1__AuthResult *m = TNEW(Rackboot__V1__AuthResult, rackboot__v1__auth_result__init);
    m->role = RACKBOOT__V1__ROLE__ROLE_AGENT;
    m->name = tstr("agent-a1");
    m->rack = tstr("a1");
    m->controller_version = tstr("rackboot 0.1.0");
    return m;
}

static Rackboot__V1__AgentReply *reply_result(void)
{
    Rackboot__V1__AgentReply *e = TNEW(Rackboot__V1__AgentReply, rackboot__v1__agent_reply__init);
    e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_RESULT;
    e->auth_result = make_result();
    return e;
}

static Rackboot__V1__AgentReply *reply_ack(void)
{
    Rackboot__V1__AgentReply *e = TNEW(Rackboot__V1__AgentReply, rackboot__v1__agent_reply__init);
    e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK;
    e->event_ack = TNEW(Rackboot__V1__EventAck, rackboot__v1__event_ack__init);
    e->event_ack->stored_through = 1040;
    return e;
}

static Rackboot__V1__AgentReply *reply_error(void)
{
    Rackboot__V1__AgentReply *e = TNEW(Rackboot__V1__AgentReply, rackboot__v1__agent_reply__init);
    e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY_ERROR;
    e->error = TNEW(Rackboot__V1__Error, rackboot__v1__error__init);
    e->error->code = RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED;
    e->error->message = tstr("certificate names rack b2, not a1");
    return e;
}

static Rackboot__V1__Host *make_host(unsigned i)
{
    Rackboot__V1__Host *m = TNEW(Rackboot__V1__Host, rackboot__v1__host__init);
    m->name = tstr("web%u", i);
    m->n_macs = 1;
    m->macs = TARRAY(ProtobufCBinaryData, 1);
    m->macs[0] = mac_of(i);
    m->rack = tstr("a%u", 1 + i % 4);
    m->address = addr_of(i);
    m->prefix_length = 64;
    if (i % 2) {
        m->gateway = addr_last(1);
    }
    m->hostname = tstr("web%u.dc1.example.net", i);
    return m;
}

static Rackboot__V1__Selector *make_selector(int kind)
{
    Rackboot__V1__Selector *s = TNEW(Rackboot__V1__Selector, rackboot__v1__selector__init);
    if (kind == 0) {
        s->n_hosts = 2;
        s->hosts = TARRAY(char *, 2);
        s->hosts[0] = tstr("web17");
        s->hosts[1] = tstr("web18");
    } else if (kind == 1) {
        s->n_racks = 1;
        s->racks = TARRAY(char *, 1);
        s->racks[0] = tstr("a1");
    } else {
        s->all = true;
    }
    return s;
}

#define API_REQUEST(body, field, type, init)                                                       \
    ({                                                                                             \
        Rackboot__V1__ApiRequest *e_ =                                                             \
            TNEW(Rackboot__V1__ApiRequest, rackboot__v1__api_request__init);                       \
        e_->body_case = RACKBOOT__V1__API_REQUEST__BODY_##body;                                    \
        e_->field = TNEW(type, init);                                                              \
        e_;                                                                                        \
    })

static Rackboot__V1__ApiRequest *api_hosts_add(size_t n)
{
    Rackboot__V1__ApiRequest *e = API_REQUEST(HOSTS_ADD, hosts_add, Rackboot__V1__HostsAddRequest,
                                              rackboot__v1__hosts_add_request__init);
    e->hosts_add->n_hosts = n;
    e->hosts_add->hosts = TARRAY(Rackboot__V1__Host *, n);
    for (size_t i = 0; i < n; i++) {
        e->hosts_add->hosts[i] = make_host((unsigned)i);
    }
    e->hosts_add->update_existing = true;
    return e;
}

static Rackboot__V1__ApiRequest *api_install(void)
{
    Rackboot__V1__ApiRequest *e = API_REQUEST(INSTALL, install, Rackboot__V1__InstallRequest,
                                              rackboot__v1__install_request__init);
    e->install->target = make_selector(0);
    e->install->profile = tstr("el9");
    return e;
}

/* One of every API request kind, index 0..n. */
static Rackboot__V1__ApiRequest *api_request_kind(unsigned kind)
{
    Rackboot__V1__ApiRequest *e;

    switch (kind) {
    case 0:
        e = TNEW(Rackboot__V1__ApiRequest, rackboot__v1__api_request__init);
        e->body_case = RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO;
        e->auth_hello = make_hello(RACKBOOT__V1__ROLE__ROLE_OPERATOR);
        return e;
    case 1:
        e = TNEW(Rackboot__V1__ApiRequest, rackboot__v1__api_request__init);
        e->body_case = RACKBOOT__V1__API_REQUEST__BODY_AUTH_PROOF;
        e->auth_proof = request_proof()->auth_proof;
        return e;
    case 2:
        return api_hosts_add(3);
    case 3:
        e = API_REQUEST(HOSTS_LIST, hosts_list, Rackboot__V1__HostsListRequest,
                        rackboot__v1__hosts_list_request__init);
        e->hosts_list->rack = tstr("a1");
        return e;
    case 4:
        e = API_REQUEST(HOSTS_LIST, hosts_list, Rackboot__V1__HostsListRequest,
                        rackboot__v1__hosts_list_request__init);
        e->hosts_list->n_names = 1;
        e->hosts_list->names = TARRAY(char *, 1);
        e->hosts_list->names[0] = tstr("web17"); /* hosts show web17 */
        return e;
    case 5:
        e = API_REQUEST(HOSTS_REMOVE, hosts_remove, Rackboot__V1__HostsRemoveRequest,
                        rackboot__v1__hosts_remove_request__init);
        e->hosts_remove->n_names = 2;
        e->hosts_remove->names = TARRAY(char *, 2);
        e->hosts_remove->names[0] = tstr("web17");
        e->hosts_remove->names[1] = tstr("web18.old");
        return e;
    case 6:
        return API_REQUEST(RACKS_LIST, racks_list, Rackboot__V1__RacksListRequest,
                           rackboot__v1__racks_list_request__init);
    case 7:
        e = API_REQUEST(PROFILES_IMPORT, profiles_import, Rackboot__V1__ProfilesImportRequest,
                        rackboot__v1__profiles_import_request__init);
        e->profiles_import->n_profiles = 1;
        e->profiles_import->profiles = TARRAY(Rackboot__V1__Profile *, 1);
        e->profiles_import->profiles[0] = make_profile("el9", 4);
        return e;
    case 8:
        e = API_REQUEST(PROFILES_LIST, profiles_list, Rackboot__V1__ProfilesListRequest,
                        rackboot__v1__profiles_list_request__init);
        e->profiles_list->n_names = 1;
        e->profiles_list->names = TARRAY(char *, 1);
        e->profiles_list->names[0] = tstr("el9");
        e->profiles_list->with_content = true;
        return e;
    case 9:
        return API_REQUEST(IMAGES_LIST, images_list, Rackboot__V1__ImagesListRequest,
                           rackboot__v1__images_list_request__init);
    case 10:
        return api_install();
    case 11:
        e = API_REQUEST(CANCEL, cancel, Rackboot__V1__CancelRequest,
                        rackboot__v1__cancel_request__init);
        e->cancel->target = make_selector(1);
        return e;
    case 12:
        e = API_REQUEST(STATUS, status, Rackboot__V1__StatusRequest,
                        rackboot__v1__status_request__init);
        e->status->target = make_selector(2);
        return e;
    case 13:
        e = API_REQUEST(EVENTS, events, Rackboot__V1__EventsRequest,
                        rackboot__v1__events_request__init);
        e->events->host = tstr("web17");
        e->events->after_seq = 9000;
        e->events->limit = 500;
        e->events->max_wait_ms = 30000;
        return e;
    case 14:
        e = API_REQUEST(AUDIT, audit, Rackboot__V1__AuditRequest,
                        rackboot__v1__audit_request__init);
        e->audit->since_unix_ms = 1764041657123ull;
        e->audit->limit = 100;
        return e;
    case 15:
        /* hosts list --rack a1, the page after web17 */
        e = API_REQUEST(HOSTS_LIST, hosts_list, Rackboot__V1__HostsListRequest,
                        rackboot__v1__hosts_list_request__init);
        e->hosts_list->rack = tstr("a1");
        e->hosts_list->limit = 1000;
        e->hosts_list->after = tstr("web17");
        return e;
    case 16:
        /* status --all, the page after web17 */
        e = API_REQUEST(STATUS, status, Rackboot__V1__StatusRequest,
                        rackboot__v1__status_request__init);
        e->status->target = make_selector(2);
        e->status->limit = 500;
        e->status->after = tstr("web17");
        return e;
    case 17:
        /* web login */
        e = API_REQUEST(WEB_LOGIN, web_login, Rackboot__V1__WebLoginRequest,
                        rackboot__v1__web_login_request__init);
        return e;
    default:
        return NULL;
    }
}
#define API_REQUEST_KINDS 18

static Rackboot__V1__StatusRow *make_status_row(unsigned i)
{
    Rackboot__V1__StatusRow *r = TNEW(Rackboot__V1__StatusRow, rackboot__v1__status_row__init);
    r->host = tstr("web%u", i);
    r->rack = tstr("a1");
    r->install_id = tstr("6f1c2a3e-0000-4000-8000-%012u", i);
    r->profile = tstr("el9");
    r->state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLING;
    r->phase = RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
    r->percent = 37;
    r->updated_unix_ms = 1764041657123ull;
    r->attempt = 1;
    r->message = tstr("squashfs.img 296 MiB of 800 MiB");
    return r;
}

static Rackboot__V1__ApiReply *api_reply_statuses(size_t n)
{
    Rackboot__V1__ApiReply *e = TNEW(Rackboot__V1__ApiReply, rackboot__v1__api_reply__init);
    e->status = RACKBOOT__V1__STATUS__STATUS_OK;
    e->message = tstr("%zu hosts", n);
    e->body_case = RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    e->statuses = TNEW(Rackboot__V1__StatusList, rackboot__v1__status_list__init);
    e->statuses->n_rows = n;
    e->statuses->rows = TARRAY(Rackboot__V1__StatusRow *, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        e->statuses->rows[i] = make_status_row((unsigned)i);
    }
    return e;
}

/* One of every API reply kind. */
/* Two audit rows: an operator's install, a viewer refused. */
static Rackboot__V1__AuditList *make_audit_list(void)
{
    Rackboot__V1__AuditList *l = TNEW(Rackboot__V1__AuditList, rackboot__v1__audit_list__init);
    l->n_rows = 2;
    l->rows = talloc(2 * sizeof(*l->rows));
    for (unsigned i = 0; i < 2; i++) {
        Rackboot__V1__AuditRow *r = TNEW(Rackboot__V1__AuditRow, rackboot__v1__audit_row__init);
        r->seq = 1 + i;
        r->time_unix_ms = 1764041657123ull + i;
        r->who = tstr(i ? "viewer:val" : "operator:alice");
        r->verb = tstr("install");
        r->n_hosts = 2;
        r->hosts = talloc(2 * sizeof(*r->hosts));
        r->hosts[0] = tstr("web17");
        r->hosts[1] = tstr("web18");
        r->host_count = 2;
        r->n_profiles = 1;
        r->profiles = talloc(sizeof(*r->profiles));
        r->profiles[0] = tstr("el9");
        r->ok = !i;
        r->result = tstr(i ? "permission denied: viewer may not install" : "ok");
        l->rows[i] = r;
    }
    return l;
}

static Rackboot__V1__ApiReply *api_reply_kind(unsigned kind)
{
    Rackboot__V1__ApiReply *e = TNEW(Rackboot__V1__ApiReply, rackboot__v1__api_reply__init);
    e->status = RACKBOOT__V1__STATUS__STATUS_OK;
    e->message = tstr("ok");
    switch (kind) {
    case 0:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_AUTH_CHALLENGE;
        e->auth_challenge = reply_challenge()->auth_challenge;
        return e;
    case 1:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_AUTH_RESULT;
        e->auth_result = make_result();
        e->auth_result->role = RACKBOOT__V1__ROLE__ROLE_OPERATOR;
        e->auth_result->name = tstr("alice");
        e->auth_result->rack = tstr("%s", "");
        return e;
    case 2:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_HOSTS;
        e->hosts = TNEW(Rackboot__V1__HostList, rackboot__v1__host_list__init);
        e->hosts->n_hosts = 3;
        e->hosts->hosts = api_hosts_add(3)->hosts_add->hosts;
        return e;
    case 3:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_RACKS;
        e->racks = TNEW(Rackboot__V1__RackList, rackboot__v1__rack_list__init);
        e->racks->n_racks = 1;
        e->racks->racks = TARRAY(Rackboot__V1__RackRow *, 1);
        e->racks->racks[0] = TNEW(Rackboot__V1__RackRow, rackboot__v1__rack_row__init);
        e->racks->racks[0]->rack = tstr("a1");
        e->racks->racks[0]->agent = tstr("agent-a1");
        e->racks->racks[0]->agent_version = tstr("rackboot 0.1.0");
        e->racks->racks[0]->last_seen_unix_ms = 1764041657123ull;
        e->racks->racks[0]->generation = 42;
        e->racks->racks[0]->acked_generation = 41;
        e->racks->racks[0]->hosts = 40;
        e->racks->racks[0]->active_installs = 3;
        return e;
    case 4:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_PROFILES;
        e->profiles = TNEW(Rackboot__V1__ProfileList, rackboot__v1__profile_list__init);
        e->profiles->n_profiles = 1;
        e->profiles->profiles = TARRAY(Rackboot__V1__Profile *, 1);
        e->profiles->profiles[0] = make_profile("el9", 1);
        /* profiles list: no template, hash kept */
        e->profiles->profiles[0]->kickstart_template = tstr("%s", "");
        return e;
    case 5:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_IMAGES;
        e->images = TNEW(Rackboot__V1__ImageList, rackboot__v1__image_list__init);
        e->images->n_images = 1;
        e->images->images = TARRAY(Rackboot__V1__ImageRow *, 1);
        e->images->images[0] = TNEW(Rackboot__V1__ImageRow, rackboot__v1__image_row__init);
        e->images->images[0]->profile = tstr("el9");
        e->images->images[0]->image =
            make_image("el9", "vmlinuz", RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL, 0);
        return e;
    case 6:
        return api_reply_statuses(3);
    case 7:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_EVENTS;
        e->events = TNEW(Rackboot__V1__EventList, rackboot__v1__event_list__init);
        e->events->n_events = 2;
        e->events->events = TARRAY(Rackboot__V1__EventRow *, 2);
        for (unsigned i = 0; i < 2; i++) {
            Rackboot__V1__EventRow *r = TNEW(Rackboot__V1__EventRow, rackboot__v1__event_row__init);
            r->seq = 9001 + i;
            r->time_unix_ms = 1764041657123ull + i;
            r->host = tstr("web17");
            r->install_id = tstr("6f1c2a3e-0000-4000-8000-000000000017");
            r->phase = i ? RACKBOOT__V1__PHASE__PHASE_INSTALLED
                         : RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
            r->percent = i ? 0 : 100;
            r->message = tstr("row %u", i);
            e->events->events[i] = r;
        }
        e->events->last_seq = 9002;
        return e;
    case 8:
        /* hosts remove: status and message only */
        return e;
    case 9:
        e->status = RACKBOOT__V1__STATUS__STATUS_NOT_FOUND;
        e->message = tstr("no host web99");
        return e;
    case 10:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_AUDIT;
        e->audit = make_audit_list();
        return e;
    case 11:
        /* a page of hosts with more after it */
        e = api_reply_kind(2);
        e->hosts->more = true;
        return e;
    case 12:
        /* a page of status rows with more after it */
        e = api_reply_statuses(2);
        e->statuses->more = true;
        return e;
    case 13:
        e->body_case = RACKBOOT__V1__API_REPLY__BODY_WEB_LOGIN;
        e->web_login = TNEW(Rackboot__V1__WebLogin, rackboot__v1__web_login__init);
        e->web_login->url = tstr("https://[::1]:8443/login/%064d", 7);
        e->web_login->expires_unix_ms = 1700000300000ull;
        return e;
    default:
        return NULL;
    }
}
#define API_REPLY_KINDS 14

/* ---- Helpers ----------------------------------------------------------- */

static uint8_t *pack_raw(const ProtobufCMessage *m, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = talloc(n);
    assert_int_equal(protobuf_c_message_pack(m, buf), n);
    *ret_len = n;
    return buf;
}

/* Unpacks as the envelope type of `desc`. */
static int unpack_as(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                     size_t max, ProtobufCMessage **ret)
{
    int r;
    if (desc == &rackboot__v1__agent_request__descriptor) {
        Rackboot__V1__AgentRequest *m = NULL;
        r = rbproto_unpack_agent_request(buf, len, max, &m);
        *ret = m ? &m->base : NULL;
    } else if (desc == &rackboot__v1__agent_reply__descriptor) {
        Rackboot__V1__AgentReply *m = NULL;
        r = rbproto_unpack_agent_reply(buf, len, max, &m);
        *ret = m ? &m->base : NULL;
    } else if (desc == &rackboot__v1__api_request__descriptor) {
        Rackboot__V1__ApiRequest *m = NULL;
        r = rbproto_unpack_api_request(buf, len, max, &m);
        *ret = m ? &m->base : NULL;
    } else {
        assert_ptr_equal(desc, &rackboot__v1__api_reply__descriptor);
        Rackboot__V1__ApiReply *m = NULL;
        r = rbproto_unpack_api_reply(buf, len, max, &m);
        *ret = m ? &m->base : NULL;
    }
    return r;
}

/* Packs with rbproto_pack, unpacks as its own type, and checks the result
 * repacks to the same bytes (so every field survived). Returns the unpacked
 * message for spot checks; the caller frees it. */
static ProtobufCMessage *round_trip(const ProtobufCMessage *m, size_t *ret_len)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t len, again_len;
    ProtobufCMessage *out = NULL;

    assert_int_equal(rbproto_pack(m, RBPROTO_MAX_MESSAGE, &buf, &len), 0);
    assert_int_equal(unpack_as(m->descriptor, buf, len, RBPROTO_MAX_MESSAGE, &out), 0);
    assert_non_null(out);
    assert_int_equal(rbproto_pack(out, RBPROTO_MAX_MESSAGE, &again, &again_len), 0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, buf, len);
    free(again);
    free(buf);
    if (ret_len) {
        *ret_len = len;
    }
    return out;
}

/* ---- Round trips ------------------------------------------------------- */

static void test_round_trip_rack_sync(void **state)
{
    size_t len;
    Rackboot__V1__AgentReply *in = reply_sync(500, 50);
    Rackboot__V1__AgentReply *out = (Rackboot__V1__AgentReply *)round_trip(&in->base, &len);

    assert_int_equal(out->body_case, RACKBOOT__V1__AGENT_REPLY__BODY_SYNC);
    assert_int_equal(out->sync->n_intents, 500);
    assert_int_equal(out->sync->n_profiles, 2);
    assert_string_equal(out->sync->intents[499]->host, "web499");
    assert_string_equal(out->sync->intents[499]->profile, "el8-hpc");
    assert_int_equal(out->sync->intents[499]->macs[1].len, 6);
    assert_memory_equal(out->sync->intents[499]->macs[1].data, in->sync->intents[499]->macs[1].data,
                        6);
    assert_string_equal(out->sync->profiles[0]->kickstart_template,
                        in->sync->profiles[0]->kickstart_template);
    /* Profiles are carried once: 500 intents do not repeat the 50 KiB
     * templates, so the whole sync stays far below 500 * 50 KiB. */
    assert_true(len < 500 * 1024);
    out = rbproto_agent_reply_free(out);
    assert_null(out);
}

static void test_round_trip_agent_link(void **state)
{
    Rackboot__V1__AgentRequest *reqs[] = { request_hello(), request_proof(), request_sync(),
                                           request_events(RBPROTO_MAX_EVENTS) };
    Rackboot__V1__AgentReply *replies[] = { reply_challenge(), reply_result(), reply_ack(),
                                            reply_error() };

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        Rackboot__V1__AgentRequest *out =
            (Rackboot__V1__AgentRequest *)round_trip(&reqs[i]->base, NULL);
        assert_int_equal(out->body_case, reqs[i]->body_case);
        rbproto_agent_request_free(out);
    }
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        Rackboot__V1__AgentReply *out =
            (Rackboot__V1__AgentReply *)round_trip(&replies[i]->base, NULL);
        assert_int_equal(out->body_case, replies[i]->body_case);
        rbproto_agent_reply_free(out);
    }
}

static void test_round_trip_event_batch(void **state)
{
    Rackboot__V1__AgentRequest *in = request_events(40);
    Rackboot__V1__AgentRequest *out = (Rackboot__V1__AgentRequest *)round_trip(&in->base, NULL);

    assert_int_equal(out->events->n_events, 40);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(out->events->events[i]->seq, 1000 + 2 * i);
        assert_int_equal(out->events->events[i]->phase, in->events->events[i]->phase);
        assert_string_equal(out->events->events[i]->message, in->events->events[i]->message);
    }
    /* i = 10 is DUID_LEARNED (phase 11): the binding travels with it. */
    assert_int_equal(out->events->events[10]->phase, RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED);
    assert_int_equal(out->events->events[10]->duid.len, 18);
    assert_int_equal(out->events->events[10]->mac.len, 6);
    rbproto_agent_request_free(out);
}

static void test_round_trip_api(void **state)
{
    for (unsigned k = 0; k < API_REQUEST_KINDS; k++) {
        Rackboot__V1__ApiRequest *in = api_request_kind(k);
        Rackboot__V1__ApiRequest *out = (Rackboot__V1__ApiRequest *)round_trip(&in->base, NULL);
        assert_int_equal(out->body_case, in->body_case);
        rbproto_api_request_free(out);
    }
    for (unsigned k = 0; k < API_REPLY_KINDS; k++) {
        Rackboot__V1__ApiReply *in = api_reply_kind(k);
        Rackboot__V1__ApiReply *out = (Rackboot__V1__ApiReply *)round_trip(&in->base, NULL);
        assert_int_equal(out->body_case, in->body_case);
        assert_int_equal(out->status, in->status);
        assert_string_equal(out->message, in->message);
        rbproto_api_reply_free(out);
    }
}

/* The largest rack we promise (10,000 intents) fits every limit; one more
 * intent does not. */
static void test_intent_count_limit(void **state)
{
    Rackboot__V1__AgentReply *e = reply_sync(RBPROTO_MAX_INTENTS + 1, 50);
    uint8_t *buf;
    size_t len;
    ProtobufCMessage *out = NULL;

    e->sync->n_intents = RBPROTO_MAX_INTENTS;
    assert_int_equal(rbproto_pack(&e->base, RBPROTO_MAX_MESSAGE, &buf, &len), 0);
    assert_int_equal(unpack_as(e->base.descriptor, buf, len, RBPROTO_MAX_MESSAGE, &out), 0);
    rbproto_free(out);
    free(buf);

    e->sync->n_intents = RBPROTO_MAX_INTENTS + 1;
    assert_int_equal(rbproto_validate_sync_response(e->sync), -EBADMSG);
    buf = pack_raw(&e->base, &len);
    out = NULL;
    assert_int_equal(unpack_as(e->base.descriptor, buf, len, RBPROTO_MAX_MESSAGE, &out), -EBADMSG);
    assert_null(out);
}

/* ---- Malformed input --------------------------------------------------- */

/* An envelope is one length-delimited field, so every proper prefix of its
 * encoding cuts a field short and must be refused. */
static void test_truncated_at_every_length(void **state)
{
    const ProtobufCMessage *msgs[] = {
        &request_events(5)->base,
        &reply_sync(3, 1)->base,
        &api_hosts_add(3)->base,
        &api_install()->base,
    };

    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t len;
        uint8_t *full = pack_raw(msgs[i], &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* An exact-size copy, so ASan sees any read past the cut. */
            uint8_t *part = malloc(cut ? cut : 1);
            memcpy(part, full, cut);
            ProtobufCMessage *out = NULL;
            int r = unpack_as(msgs[i]->descriptor, part, cut, RBPROTO_MAX_MESSAGE, &out);
            free(part);
            if (r != -EBADMSG) {
                fail_msg("%s cut at %zu of %zu: %d", msgs[i]->descriptor->name, cut, len, r);
            }
            assert_null(out);
        }
        ProtobufCMessage *out = NULL;
        assert_int_equal(unpack_as(msgs[i]->descriptor, full, len, RBPROTO_MAX_MESSAGE, &out), 0);
        rbproto_free(out);
    }
}

/* An ApiReply has fields before its body: a cut right after the status or
 * the message is a shorter valid reply, every other cut is malformed. */
static void test_truncated_api_reply(void **state)
{
    Rackboot__V1__ApiReply *e = api_reply_statuses(3);
    size_t len;
    uint8_t *full = pack_raw(&e->base, &len);
    /* status: 08 01; message "3 hosts": 12 07 ... */
    const size_t after_status = 2, after_message = 2 + 2 + strlen("3 hosts");

    assert_int_equal(full[0], 0x08);
    assert_int_equal(full[2], 0x12);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, full, cut);
        Rackboot__V1__ApiReply *out = NULL;
        int r = rbproto_unpack_api_reply(part, cut, RBPROTO_MAX_MESSAGE, &out);
        free(part);
        if (cut == after_status || cut == after_message) {
            assert_int_equal(r, 0);
            assert_int_equal(out->body_case, RACKBOOT__V1__API_REPLY__BODY__NOT_SET);
            rbproto_api_reply_free(out);
        } else if (r != -EBADMSG) {
            fail_msg("cut at %zu of %zu: %d", cut, len, r);
        }
    }
}

static void test_length_past_end(void **state)
{
    /* auth_hello, length 5, one byte present */
    static const uint8_t short_len[] = { 0x0a, 0x05, 0x01 };
    /* auth_hello, length a varint that never ends */
    static const uint8_t endless[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    /* auth_hello, length 2^63 */
    static const uint8_t huge[] = { 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80,
                                    0x80, 0x80, 0x80, 0x80, 0x01, 0x00 };
    /* auth_hello { certificate_pem: length 0xffffffff, 3 bytes present } */
    static const uint8_t long_string[] = { 0x0a, 0x09, 0x12, 0xff, 0xff, 0xff,
                                           0xff, 0x0f, 'a',  'b',  'c' };
    /* sync { intents: length 0x7fffffff } — a "huge repeated field" in 8 bytes */
    static const uint8_t big_repeated[] = { 0x1a, 0x06, 0x2a, 0xff, 0xff, 0xff, 0xff, 0x07 };
    Rackboot__V1__AgentRequest *req = NULL;
    Rackboot__V1__AgentReply *rep = NULL;

    assert_int_equal(rbproto_unpack_agent_request(short_len, sizeof(short_len), 64, &req),
                     -EBADMSG);
    assert_int_equal(rbproto_unpack_agent_request(endless, sizeof(endless), 64, &req), -EBADMSG);
    assert_int_equal(rbproto_unpack_agent_request(huge, sizeof(huge), 64, &req), -EBADMSG);
    assert_int_equal(rbproto_unpack_agent_request(long_string, sizeof(long_string), 64, &req),
                     -EBADMSG);
    assert_int_equal(rbproto_unpack_agent_reply(big_repeated, sizeof(big_repeated), 64, &rep),
                     -EBADMSG);
    assert_null(req);
    assert_null(rep);
}

static void test_wrong_wire_types(void **state)
{
    /* auth_hello (a message) sent as a varint */
    static const uint8_t msg_as_varint[] = { 0x08, 0x01 };
    /* auth_hello { certificate_pem (a string) sent as fixed32 } */
    static const uint8_t string_as_fixed32[] = { 0x0a, 0x05, 0x15, 0x01, 0x02, 0x03, 0x04 };
    /* sync { held_generation (a varint) sent length-delimited } */
    static const uint8_t varint_as_bytes[] = { 0x1a, 0x03, 0x0a, 0x01, 0x01 };
    /* an unknown field 99 as a proto2 group */
    static const uint8_t group[] = { 0x9b, 0x06, 0x9c, 0x06 };
    /* wire type 7 does not exist */
    static const uint8_t type7[] = { 0x0f, 0x00 };
    /* field number 0 (a padded key, 81 00: fixed64) before a valid sync;
     * protobuf-c keeps it as unknown, but could not re-read it repacked */
    static const uint8_t field0[] = { 0x81, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x1a, 0x00 };
    const uint8_t *cases[] = { msg_as_varint, string_as_fixed32, varint_as_bytes, group, type7,
                               field0 };
    const size_t lens[] = { sizeof(msg_as_varint),   sizeof(string_as_fixed32),
                            sizeof(varint_as_bytes), sizeof(group),
                            sizeof(type7),           sizeof(field0) };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Rackboot__V1__AgentRequest *req = NULL;
        if (rbproto_unpack_agent_request(cases[i], lens[i], 64, &req) != -EBADMSG) {
            fail_msg("case %zu accepted", i);
        }
        assert_null(req);
    }
}

/* Over the limit is refused before a byte is read: the buffer here is 16
 * bytes while the call claims more, so any read would be an ASan report. */
static void test_over_limit_refused_unread(void **state)
{
    uint8_t *small = malloc(16);
    Rackboot__V1__AgentRequest *req = NULL;
    Rackboot__V1__ApiRequest *api = NULL;

    assert_non_null(small);
    memset(small, 0xff, 16);
    assert_int_equal(rbproto_unpack_agent_request(small, 1u << 20, (1u << 20) - 1, &req), -E2BIG);
    assert_int_equal(rbproto_unpack_api_request(small, (size_t)RBPROTO_MAX_MESSAGE + 1,
                                                RBPROTO_MAX_MESSAGE, &api),
                     -E2BIG);
    assert_int_equal(rbproto_unpack_agent_request(NULL, SIZE_MAX, RBPROTO_MAX_MESSAGE, &req),
                     -E2BIG);
    assert_null(req);
    assert_null(api);
    free(small);

    /* The same for a valid message one byte over a caller's limit. */
    Rackboot__V1__AgentRequest *hello = request_hello();
    size_t len;
    uint8_t *buf = pack_raw(&hello->base, &len);
    assert_int_equal(rbproto_unpack_agent_request(buf, len, len - 1, &req), -E2BIG);
    assert_int_equal(rbproto_unpack_agent_request(buf, len, len, &req), 0);
    rbproto_agent_request_free(req);
}

/* Appends a varint. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* AgentReply { sync { intents: n empty Intents } }: 2 bytes per intent on
 * the wire, a whole Intent struct each in memory. */
static uint8_t *empty_intents(size_t n, size_t *ret_len)
{
    uint8_t *buf = talloc(2 * n + 32);
    size_t off = 0;
    buf[off++] = 0x1a; /* AgentReply.sync */
    off += put_varint(buf + off, 2 * n);
    for (size_t i = 0; i < n; i++) {
        buf[off++] = 0x2a; /* SyncResponse.intents, length 0 */
        buf[off++] = 0x00;
    }
    *ret_len = off;
    return buf;
}

static void test_allocation_budget(void **state)
{
    Rackboot__V1__AgentReply *rep = NULL;
    Rackboot__V1__AgentRequest *req = NULL;
    size_t len, peak;

    /* 400 KB of empty intents would take tens of MB in C. Without the
     * budget protobuf-c would build them all and validation would answer
     * -EBADMSG; the budget stops it first. */
    uint8_t *bomb = empty_intents(200000, &len);
    assert_int_equal(rbproto_unpack_peak(&rackboot__v1__agent_reply__descriptor, bomb, len, &peak),
                     0);
    assert_true(peak > rbproto_budget_limit(len));
    assert_int_equal(rbproto_unpack_agent_reply(bomb, len, RBPROTO_MAX_MESSAGE, &rep), -E2BIG);
    assert_null(rep);

    /* The same shape, small: within budget, so it is the validator that
     * refuses the empty intents. */
    uint8_t *small = empty_intents(10, &len);
    assert_int_equal(rbproto_unpack_agent_reply(small, len, RBPROTO_MAX_MESSAGE, &rep), -EBADMSG);

    /* Unknown fields are kept by protobuf-c, so they count too: 300,000
     * unknown varint fields (field 15, 2 bytes each, ~60 bytes each in
     * memory) after a valid sync request. */
    const size_t n_unknown = 300000;
    uint8_t *unk = talloc(2 * n_unknown + 16);
    size_t off = 0;
    unk[off++] = 0x1a; /* AgentRequest.sync, empty: a valid request */
    unk[off++] = 0x00;
    for (size_t i = 0; i < n_unknown; i++) {
        unk[off++] = 0x78; /* field 15, varint */
        unk[off++] = 0x01;
    }
    assert_int_equal(rbproto_unpack_agent_request(unk, off, RBPROTO_MAX_MESSAGE, &req), -E2BIG);
    /* ... and a few of them are skipped as proto3 promises. */
    assert_int_equal(rbproto_unpack_agent_request(unk, 2 + 2 * 100, RBPROTO_MAX_MESSAGE, &req), 0);
    assert_int_equal(req->body_case, RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC);
    rbproto_agent_request_free(req);
}

/* The budget follows the input's length, and a non-canonical encoding
 * makes the same message longer than its repacked form: here each unknown
 * field's key is padded (fa 80 80 80 00 for 7a), which repacking undoes,
 * while its padded length (80 80 80 80 00 for 0) is kept as part of the
 * unknown field's bytes. Accepting it would let a peer send what we could
 * not forward or store and read back (found by fuzz_proto), so the budget
 * is held against the repacked length too. */
static void test_budget_holds_for_repacked_form(void **state)
{
    static const uint8_t padded_empty_field15[] = {
        0xfa, 0x80, 0x80, 0x80, 0x00, /* key: field 15, length-delimited */
        0x80, 0x80, 0x80, 0x80, 0x00, /* length 0 */
    };
    const size_t each = sizeof(padded_empty_field15), n_unknown = 20000;
    Rackboot__V1__AgentRequest *req = NULL;
    uint8_t *buf = talloc(each * n_unknown + 16);
    size_t off = 0;

    buf[off++] = 0x1a; /* AgentRequest.sync, empty: a valid request */
    buf[off++] = 0x00;
    for (size_t i = 0; i < n_unknown; i++) {
        memcpy(buf + off, padded_empty_field15, each);
        off += each;
    }
    size_t peak;
    assert_int_equal(rbproto_unpack_peak(&rackboot__v1__agent_request__descriptor, buf, off, &peak),
                     0);
    assert_true(peak <= rbproto_budget_limit(off));
    const size_t repacked_each = 6;
    assert_true(peak > rbproto_budget_limit(2 + repacked_each * n_unknown));
    assert_int_equal(rbproto_unpack_agent_request(buf, off, RBPROTO_MAX_MESSAGE, &req), -E2BIG);
    assert_null(req);

    /* Fewer of the same fields: accepted, and still so once repacked. */
    const size_t few = 100;
    assert_int_equal(rbproto_unpack_agent_request(buf, 2 + each * few, RBPROTO_MAX_MESSAGE, &req),
                     0);
    uint8_t *packed = NULL;
    size_t packed_len;
    assert_int_equal(rbproto_pack(&req->base, RBPROTO_MAX_MESSAGE, &packed, &packed_len), 0);
    assert_int_equal(packed_len, 2 + repacked_each * few);
    Rackboot__V1__AgentRequest *again = NULL;
    assert_int_equal(rbproto_unpack_agent_request(packed, packed_len, RBPROTO_MAX_MESSAGE, &again),
                     0);
    rbproto_agent_request_free(again);
    free(packed);
    rbproto_agent_request_free(req);
}

/* The budget is a measured claim: realistic messages need well under half
 * of it (so they never fail at the edge), and the numbers in rbproto.h stay
 * true. */
static void test_budget_realistic_messages_fit(void **state)
{
    const ProtobufCMessage *msgs[] = {
        &reply_sync(500, 50)->base,
        &reply_sync(2000, 4)->base,
        &request_events(RBPROTO_MAX_EVENTS)->base,
        &api_hosts_add(5000)->base,
        &api_reply_statuses(5000)->base,
        &request_hello()->base,
    };

    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t len, peak;
        uint8_t *buf = pack_raw(msgs[i], &len);
        assert_int_equal(rbproto_unpack_peak(msgs[i]->descriptor, buf, len, &peak), 0);
        print_message("%s: %zu bytes, peak %zu (%.2f per byte), budget %zu\n",
                      msgs[i]->descriptor->name, len, peak, (double)peak / (double)len,
                      rbproto_budget_limit(len));
        assert_true(peak * 2 <= rbproto_budget_limit(len));
    }
}

/* ---- Validation rules -------------------------------------------------- */

/* Each rule: a builder of a valid envelope and one change that breaks
 * exactly one rule. The test checks the valid one passes, then that the
 * broken one is refused by the validator, by unpacking, and by packing. */
typedef struct rule {
    const char *name;
    ProtobufCMessage *(*make)(bool broken);
} rule;

#define RULE(id, type, builder, mutation)                                                          \
    static ProtobufCMessage *rule_##id(bool broken)                                                \
    {                                                                                              \
        type *e = builder;                                                                         \
        if (broken) {                                                                              \
            mutation;                                                                              \
        }                                                                                          \
        return &e->base;                                                                           \
    }

#define SYNC_RULE(id, mutation)  RULE(id, Rackboot__V1__AgentReply, reply_sync(3, 1), mutation)
#define EVENT_RULE(id, mutation) RULE(id, Rackboot__V1__AgentRequest, request_events(3), mutation)
#define I0                       (e->sync->intents[0])
#define P0                       (e->sync->profiles[0])
#define EV0                      (e->events->events[0])

static ProtobufCBinaryData bytes_n(size_t n, uint8_t fill)
{
    uint8_t *p = talloc(n);
    memset(p, fill, n);
    return (ProtobufCBinaryData){ .len = n, .data = p };
}

static ProtobufCBinaryData *macs_n(size_t n)
{
    ProtobufCBinaryData *m = TARRAY(ProtobufCBinaryData, n);
    for (size_t i = 0; i < n; i++) {
        m[i] = mac_of(0x100000 + (unsigned)i);
    }
    return m;
}

/* Intents */
SYNC_RULE(address_15_bytes, I0->address.len = 15)
SYNC_RULE(address_17_bytes, I0->address = bytes_n(17, 0x20))
SYNC_RULE(address_missing, I0->address.len = 0)
SYNC_RULE(address_multicast, I0->address.data[0] = 0xff)
SYNC_RULE(address_unspecified, I0->address = bytes_n(16, 0))
SYNC_RULE(gateway_4_bytes, I0->gateway.len = 4)
SYNC_RULE(dns_server_15_bytes, I0->dns_servers[1].len = 15)
SYNC_RULE(dns_servers_9, {
    I0->n_dns_servers = 9;
    I0->dns_servers = TARRAY(ProtobufCBinaryData, 9);
    for (size_t i = 0; i < 9; i++) {
        I0->dns_servers[i] = addr_last((uint8_t)(0x50 + i));
    }
})
SYNC_RULE(macs_none, I0->n_macs = 0)
SYNC_RULE(macs_17, {
    I0->n_macs = 17;
    I0->macs = macs_n(17);
})
SYNC_RULE(mac_5_bytes, I0->macs[0].len = 5)
SYNC_RULE(mac_7_bytes, I0->macs[0] = bytes_n(7, 0x52))
SYNC_RULE(mac_multicast, I0->macs[0].data[0] = 0x01)
SYNC_RULE(mac_zero, I0->macs[0] = bytes_n(6, 0))
SYNC_RULE(duid_131_bytes, I0->duid = bytes_n(131, 0x04))
SYNC_RULE(duid_2_bytes, I0->duid = bytes_n(2, 0x04))
SYNC_RULE(prefix_length_0, I0->prefix_length = 0)
SYNC_RULE(prefix_length_129, I0->prefix_length = 129)
SYNC_RULE(hostname_space, I0->hostname = tstr("web0 .example.net"))
SYNC_RULE(hostname_empty_label, I0->hostname = tstr("web0..example.net"))
SYNC_RULE(hostname_hyphen_label, I0->hostname = tstr("-web0.example.net"))
SYNC_RULE(hostname_label_64, I0->hostname = tstr("%064d.example.net", 0))
SYNC_RULE(search_semicolon, I0->search[0] = tstr("example.net;reboot"))
SYNC_RULE(host_slash, I0->host = tstr("../../etc"))
SYNC_RULE(host_64_chars, I0->host = tstr("%064d", 7))
SYNC_RULE(install_id_missing, I0->install_id = tstr("%s", ""))
SYNC_RULE(install_id_slash, I0->install_id = tstr("abc/def"))
SYNC_RULE(token_short, I0->token = tstr("0123456789abcde"))
SYNC_RULE(token_space, I0->token = tstr("0123456789abcdef 1"))
SYNC_RULE(attempt_0, I0->attempt = 0)
SYNC_RULE(profile_unknown, I0->profile = tstr("el10"))
/* Consistency of one rack's intents */
SYNC_RULE(duplicate_mac, I0->macs[1] = e->sync->intents[2]->macs[0])
SYNC_RULE(duplicate_address, I0->address = e->sync->intents[1]->address)
SYNC_RULE(duplicate_install_id, I0->install_id = e->sync->intents[1]->install_id)
SYNC_RULE(duplicate_host, I0->host = e->sync->intents[1]->host)
SYNC_RULE(duplicate_duid, e->sync->intents[1]->duid = I0->duid)
SYNC_RULE(duplicate_profile, e->sync->profiles[1]->name = P0->name)
SYNC_RULE(unchanged_with_intents, e->sync->unchanged = true)
SYNC_RULE(rack_missing, e->sync->rack = tstr("%s", ""))
/* Profiles and images */
SYNC_RULE(sha256_31_bytes, P0->images[0]->sha256.len = 31)
SYNC_RULE(sha256_missing, P0->images[1]->sha256.len = 0)
SYNC_RULE(kickstart_sha256_33_bytes, P0->kickstart_sha256 = bytes_n(33, 1))
SYNC_RULE(image_name_dotdot, P0->images[2]->name = tstr(".."))
SYNC_RULE(image_name_slash, P0->images[2]->name = tstr("a/b"))
SYNC_RULE(image_url_file, P0->images[0]->url = tstr("file:///etc/shadow"))
SYNC_RULE(image_url_space, P0->images[0]->url = tstr("http://a b/"))
SYNC_RULE(image_url_no_host, P0->images[0]->url = tstr("https://"))
SYNC_RULE(image_kind_unknown, P0->images[2]->kind = (Rackboot__V1__ImageKind)9)
SYNC_RULE(image_kind_unspecified,
          P0->images[2]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_UNSPECIFIED)
SYNC_RULE(two_kernels, P0->images[1]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL)
SYNC_RULE(no_initrd, P0->images[1]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER)
SYNC_RULE(duplicate_image_name, P0->images[2]->name = P0->images[1]->name)
SYNC_RULE(images_65, {
    P0->n_images = 65;
    Rackboot__V1__Image **imgs = TARRAY(Rackboot__V1__Image *, 65);
    for (size_t i = 0; i < 65; i++) {
        imgs[i] = i < 3 ? P0->images[i]
                        : make_image("el9", tstr("extra%zu", i),
                                     RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER, i);
    }
    P0->images = imgs;
})
SYNC_RULE(kernel_args_newline, P0->kernel_args = tstr("quiet\nchain http://evil/"))
SYNC_RULE(template_invalid_utf8, P0->kickstart_template = tstr("text\n\xff\xfe\n"))
SYNC_RULE(template_overlong_utf8, P0->kickstart_template = tstr("text \xc0\xaf\n"))
SYNC_RULE(template_surrogate, P0->kickstart_template = tstr("text \xed\xa0\x80\n"))
SYNC_RULE(template_escape, P0->kickstart_template = tstr("text \x1b[2J\n"))
SYNC_RULE(root_device_relative, P0->root_device = tstr("vda"))
SYNC_RULE(root_device_dotdot, P0->root_device = tstr("/dev/../etc/shadow"))
SYNC_RULE(root_device_blank, P0->root_device = tstr("/dev/vda init=/bin/sh"))
SYNC_RULE(ip_mode_unknown, P0->ip_mode = (Rackboot__V1__IpMode)2)
SYNC_RULE(uefi_boot_unknown, P0->uefi_boot = (Rackboot__V1__UefiBoot)2)
/* Image profiles (issue 14): P0 made one, then broken. */
#define AS_IMAGE_PROFILE()                                                                         \
    do {                                                                                           \
        P0->kind = RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE;                                 \
        P0->n_images = 1;                                                                          \
        P0->images[0]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK;                           \
        P0->kickstart_template = tstr("%s", "");                                                   \
        P0->kickstart_sha256.len = 0;                                                              \
        P0->overlay = false;                                                                       \
        P0->n_ssh_authorized_keys = 1;                                                             \
        P0->ssh_authorized_keys = TARRAY(char *, 1);                                               \
        P0->ssh_authorized_keys[0] = tstr("ssh-ed25519 AAAA ops@example");                         \
    } while (0)
SYNC_RULE(profile_kind_unknown, P0->kind = (Rackboot__V1__ProfileKind)7)
SYNC_RULE(install_with_disk, P0->images[2]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK)
SYNC_RULE(install_with_keys, {
    P0->n_ssh_authorized_keys = 1;
    P0->ssh_authorized_keys = TARRAY(char *, 1);
    P0->ssh_authorized_keys[0] = tstr("ssh-ed25519 AAAA ops@example");
})
SYNC_RULE(install_with_user_data, P0->user_data_template = tstr("#cloud-config\n"))
SYNC_RULE(image_with_kernel, P0->kind = RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE)
SYNC_RULE(image_two_disks, {
    AS_IMAGE_PROFILE();
    P0->n_images = 2;
    P0->images[1]->kind = RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK;
})
SYNC_RULE(image_with_kickstart, {
    AS_IMAGE_PROFILE();
    P0->kickstart_template = tstr("text\n");
    P0->kickstart_sha256 = bytes_n(32, 1);
})
SYNC_RULE(image_key_newline, {
    AS_IMAGE_PROFILE();
    P0->ssh_authorized_keys[0] = tstr("ssh-ed25519 AAAA ops\nhostname: evil");
})
SYNC_RULE(image_key_one_word, {
    AS_IMAGE_PROFILE();
    P0->ssh_authorized_keys[0] = tstr("ssh-ed25519");
})
SYNC_RULE(image_keys_65, {
    AS_IMAGE_PROFILE();
    P0->n_ssh_authorized_keys = 65;
    P0->ssh_authorized_keys = TARRAY(char *, 65);
    for (size_t i = 0; i < 65; i++) {
        P0->ssh_authorized_keys[i] = tstr("ssh-ed25519 AAAA key%zu", i);
    }
})
SYNC_RULE(image_user_data_mime, {
    AS_IMAGE_PROFILE();
    P0->user_data_template = tstr("MIME-Version: 1.0\n");
})
SYNC_RULE(image_user_data_escape, {
    AS_IMAGE_PROFILE();
    P0->user_data_template = tstr("#cloud-config\n\x1b[2J\n");
})
/* Events */
EVENT_RULE(percent_101, EV0->percent = 101)
EVENT_RULE(phase_unknown, EV0->phase = (Rackboot__V1__Phase)99)
EVENT_RULE(phase_unspecified, EV0->phase = RACKBOOT__V1__PHASE__PHASE_UNSPECIFIED)
EVENT_RULE(seq_0, EV0->seq = 0)
EVENT_RULE(seq_not_increasing, e->events->events[2]->seq = e->events->events[1]->seq)
EVENT_RULE(event_message_escape, EV0->message = tstr("done\x1b]0;pwned\x07"))
EVENT_RULE(event_message_newline, EV0->message = tstr("line one\nline two"))
EVENT_RULE(event_message_truncated_utf8, EV0->message = tstr("50 \xe2\x82"))
EVENT_RULE(event_message_long, EV0->message = tstr("%01025d", 1))
EVENT_RULE(event_mac_5_bytes, EV0->mac.len = 5)
EVENT_RULE(event_host_missing, EV0->host = tstr("%s", ""))
EVENT_RULE(duid_learned_without_duid, {
    EV0->phase = RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED;
    EV0->duid.len = 0;
})
EVENT_RULE(events_1001, {
    Rackboot__V1__AgentRequest *big = request_events(RBPROTO_MAX_EVENTS + 1);
    e->events = big->events;
})
EVENT_RULE(power_id_on_install_phase, EV0->power_id = tstr("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
EVENT_RULE(power_state_on_install_phase,
           EV0->power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON)
/* A host's power event needs no install; an install's phase does. */
static ProtobufCMessage *rule_install_phase_without_install(bool broken)
{
    Rackboot__V1__AgentRequest *e = request_events(3);
    EV0->install_id = tstr("%s", "");
    EV0->phase =
        broken ? RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND : RACKBOOT__V1__PHASE__PHASE_POWER_STATUS;
    EV0->power_state = broken ? 0 : RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF;
    return &e->base;
}
/* Hosts: a BMC URL never carries credentials, and needs a driver. */
static Rackboot__V1__ApiRequest *request_host_with_bmc(void)
{
    Rackboot__V1__ApiRequest *e = talloc(sizeof(*e));
    rackboot__v1__api_request__init(e);
    e->body_case = RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD;
    e->hosts_add = talloc(sizeof(*e->hosts_add));
    rackboot__v1__hosts_add_request__init(e->hosts_add);
    Rackboot__V1__Host *h = talloc(sizeof(*h));
    rackboot__v1__host__init(h);
    h->name = tstr("web17");
    h->rack = tstr("r1");
    h->n_macs = 1;
    h->macs = macs_n(1);
    h->address = addr_last(0x17);
    h->prefix_length = 64;
    h->bmc_url = tstr("ipmi://[2001:db8:ff::17]:623");
    h->bmc_user = tstr("admin");
    h->bmc_password = tstr("secret");
    h->firmware = RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI;
    e->hosts_add->n_hosts = 1;
    e->hosts_add->hosts = TARRAY(Rackboot__V1__Host *, 1);
    e->hosts_add->hosts[0] = h;
    return e;
}
#define HOST_BMC_RULE(id, mutation)                                                                \
    RULE(id, Rackboot__V1__ApiRequest, request_host_with_bmc(), mutation)
#define H0 (e->hosts_add->hosts[0])
HOST_BMC_RULE(bmc_url_credentials, H0->bmc_url = tstr("ipmi://admin:secret@[2001:db8:ff::17]"))
HOST_BMC_RULE(bmc_url_scheme, H0->bmc_url = tstr("telnet://[2001:db8:ff::17]"))
HOST_BMC_RULE(bmc_url_path, H0->bmc_url = tstr("ipmi://[2001:db8:ff::17]/x"))
HOST_BMC_RULE(bmc_url_port, H0->bmc_url = tstr("ipmi://[2001:db8:ff::17]:65536"))
HOST_BMC_RULE(bmc_password_newline, H0->bmc_password = tstr("sec\nret"))
HOST_BMC_RULE(bmc_password_without_url, H0->bmc_url = tstr("%s", ""))
HOST_BMC_RULE(firmware_unknown, H0->firmware = (Rackboot__V1__Firmware)9)
/* Handshake and agent link */
RULE(nonce_31_bytes, Rackboot__V1__AgentReply, reply_challenge(), e->auth_challenge->nonce.len = 31)
RULE(nonce_33_bytes, Rackboot__V1__AgentReply, reply_challenge(),
     e->auth_challenge->nonce = bytes_n(33, 1))
RULE(hello_role_unspecified, Rackboot__V1__AgentRequest, request_hello(),
     e->auth_hello->role = RACKBOOT__V1__ROLE__ROLE_UNSPECIFIED)
RULE(hello_role_unknown, Rackboot__V1__AgentRequest, request_hello(),
     e->auth_hello->role = (Rackboot__V1__Role)5)
RULE(hello_no_certificate, Rackboot__V1__AgentRequest, request_hello(),
     e->auth_hello->certificate_pem = tstr("%s", ""))
RULE(hello_certificate_binary, Rackboot__V1__AgentRequest, request_hello(),
     e->auth_hello->certificate_pem = tstr("-----BEGIN \x01"))
RULE(hello_no_version, Rackboot__V1__AgentRequest, request_hello(),
     e->auth_hello->software_version = tstr("%s", ""))
RULE(proof_empty, Rackboot__V1__AgentRequest, request_proof(), e->auth_proof->signature.len = 0)
RULE(proof_1025_bytes, Rackboot__V1__AgentRequest, request_proof(),
     e->auth_proof->signature = bytes_n(1025, 0x30))
RULE(result_agent_without_rack, Rackboot__V1__AgentReply, reply_result(),
     e->auth_result->rack = tstr("%s", ""))
RULE(sync_ack_above_held, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->acked_generation = 43)
RULE(sync_wait_too_long, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->max_wait_ms = RBPROTO_MAX_WAIT_MS + 1)
RULE(status_cache_over_limit, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->cache_bytes = RBPROTO_MAX_CACHE_BYTES + 1)
RULE(status_cache_limit_over_limit, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->cache_limit_bytes = RBPROTO_MAX_CACHE_BYTES + 1)
RULE(render_no_base_url, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", ""))
RULE(render_base_url_https, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "https://[2001:db8::2]"))
RULE(render_base_url_ipv4, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://192.0.2.1"))
RULE(render_base_url_not_an_address, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::zz]"))
RULE(render_base_url_unspecified, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[::]"))
RULE(render_base_url_path, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::2]/x"))
RULE(render_base_url_quote, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::2]:80\""))
RULE(render_base_url_port_0, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::2]:0"))
RULE(render_base_url_port_65536, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::2]:65536"))
RULE(render_base_url_empty_port, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("%s", "http://[2001:db8::2]:"))
RULE(render_base_url_64_chars, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->base_url = tstr("http://[2001:db8::2]:80%0*d",
                                              (int)RBPROTO_MAX_BASE_URL, 0))
RULE(render_dns_5_bytes, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->dns_servers[1].len = 5)
RULE(render_dns_9, Rackboot__V1__AgentRequest, request_sync(), {
    Rackboot__V1__RenderContext *rc = e->sync->status->render;
    rc->dns_servers = TARRAY(ProtobufCBinaryData, RBPROTO_MAX_DNS_SERVERS + 1);
    rc->n_dns_servers = RBPROTO_MAX_DNS_SERVERS + 1;
    for (size_t i = 0; i < rc->n_dns_servers; i++) {
        rc->dns_servers[i] = addr_last((uint8_t)(0x50 + i));
    }
})
RULE(render_search_quote, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->search[0] = tstr("%s", "a\"b.example"))
RULE(render_gateway_multicast, Rackboot__V1__AgentRequest, request_sync(),
     e->sync->status->render->gateway.data[0] = 0xff)
RULE(error_code_ok, Rackboot__V1__AgentReply, reply_error(),
     e->error->code = RACKBOOT__V1__STATUS__STATUS_OK)
RULE(error_code_unknown, Rackboot__V1__AgentReply, reply_error(),
     e->error->code = (Rackboot__V1__Status)77)
RULE(agent_request_no_body, Rackboot__V1__AgentRequest, request_sync(),
     e->body_case = RACKBOOT__V1__AGENT_REQUEST__BODY__NOT_SET)
RULE(agent_reply_no_body, Rackboot__V1__AgentReply, reply_ack(),
     e->body_case = RACKBOOT__V1__AGENT_REPLY__BODY__NOT_SET)
/* API */
RULE(api_request_no_body, Rackboot__V1__ApiRequest, api_install(),
     e->body_case = RACKBOOT__V1__API_REQUEST__BODY__NOT_SET)
RULE(install_no_profile, Rackboot__V1__ApiRequest, api_install(),
     e->install->profile = tstr("%s", ""))
RULE(install_no_target, Rackboot__V1__ApiRequest, api_install(), e->install->target = NULL)
RULE(audit_limit_over, Rackboot__V1__ApiRequest, api_request_kind(14),
     e->audit->limit = RBPROTO_MAX_AUDIT_ROWS + 1)
RULE(audit_row_no_who, Rackboot__V1__ApiReply, api_reply_kind(10),
     e->audit->rows[0]->who = tstr("%s", ""))
RULE(audit_row_who_newline, Rackboot__V1__ApiReply, api_reply_kind(10),
     e->audit->rows[0]->who = tstr("operator:a\nforged"))
RULE(audit_row_bad_host, Rackboot__V1__ApiReply, api_reply_kind(10),
     e->audit->rows[1]->hosts[0] = tstr("web 17"))
RULE(audit_row_count_below_hosts, Rackboot__V1__ApiReply, api_reply_kind(10),
     e->audit->rows[0]->host_count = 1)
RULE(audit_row_seq_0, Rackboot__V1__ApiReply, api_reply_kind(10), e->audit->rows[0]->seq = 0)
RULE(web_login_no_url, Rackboot__V1__ApiReply, api_reply_kind(13),
     e->web_login->url = tstr("%s", ""))
RULE(web_login_plain_http, Rackboot__V1__ApiReply, api_reply_kind(13),
     e->web_login->url = tstr("http://[::1]:8443/login/00"))
RULE(web_login_url_space, Rackboot__V1__ApiReply, api_reply_kind(13),
     e->web_login->url = tstr("https://[::1]:8443/login/0 0"))
RULE(selector_empty, Rackboot__V1__ApiRequest, api_install(), e->install->target->n_hosts = 0)
RULE(selector_hosts_and_all, Rackboot__V1__ApiRequest, api_install(),
     e->install->target->all = true)
RULE(selector_bad_name, Rackboot__V1__ApiRequest, api_install(),
     e->install->target->hosts[1] = tstr("web 18"))
RULE(host_no_rack, Rackboot__V1__ApiRequest, api_hosts_add(3),
     e->hosts_add->hosts[1]->rack = tstr("%s", ""))
RULE(host_mac_5_bytes, Rackboot__V1__ApiRequest, api_hosts_add(3),
     e->hosts_add->hosts[2]->macs[0].len = 5)
RULE(hosts_add_empty, Rackboot__V1__ApiRequest, api_hosts_add(3), e->hosts_add->n_hosts = 0)
RULE(events_limit, Rackboot__V1__ApiRequest, api_request_kind(13),
     e->events->limit = RBPROTO_MAX_EVENT_ROWS + 1)
/* Pages of listings by host name */
RULE(hosts_list_limit_over, Rackboot__V1__ApiRequest, api_request_kind(15),
     e->hosts_list->limit = RBPROTO_MAX_PAGE_ROWS + 1)
RULE(hosts_list_after_blank, Rackboot__V1__ApiRequest, api_request_kind(15),
     e->hosts_list->after = tstr("web 17"))
RULE(hosts_list_after_64_chars, Rackboot__V1__ApiRequest, api_request_kind(15),
     e->hosts_list->after = tstr("%064d", 1))
RULE(hosts_show_with_limit, Rackboot__V1__ApiRequest, api_request_kind(4),
     e->hosts_list->limit = 10)
RULE(hosts_show_with_after, Rackboot__V1__ApiRequest, api_request_kind(4),
     e->hosts_list->after = tstr("web1"))
RULE(status_limit_over, Rackboot__V1__ApiRequest, api_request_kind(16),
     e->status->limit = RBPROTO_MAX_PAGE_ROWS + 1)
RULE(status_after_slash, Rackboot__V1__ApiRequest, api_request_kind(16),
     e->status->after = tstr("../etc"))
RULE(status_named_hosts_paged, Rackboot__V1__ApiRequest, api_request_kind(16),
     e->status->target = make_selector(0))
RULE(status_named_hosts_after, Rackboot__V1__ApiRequest, api_request_kind(12), {
    e->status->target = make_selector(0);
    e->status->after = tstr("web1");
})
RULE(status_no_target, Rackboot__V1__ApiRequest, api_request_kind(16), e->status->target = NULL)
RULE(hosts_more_without_rows, Rackboot__V1__ApiReply, api_reply_kind(11), e->hosts->n_hosts = 0)
RULE(statuses_more_without_rows, Rackboot__V1__ApiReply, api_reply_kind(12),
     e->statuses->n_rows = 0)
RULE(api_reply_status_unspecified, Rackboot__V1__ApiReply, api_reply_statuses(2),
     e->status = RACKBOOT__V1__STATUS__STATUS_UNSPECIFIED)
RULE(api_reply_body_with_error, Rackboot__V1__ApiReply, api_reply_statuses(2),
     e->status = RACKBOOT__V1__STATUS__STATUS_CONFLICT)
RULE(status_row_percent_101, Rackboot__V1__ApiReply, api_reply_statuses(2),
     e->statuses->rows[1]->percent = 101)
RULE(status_row_state_unknown, Rackboot__V1__ApiReply, api_reply_statuses(2),
     e->statuses->rows[0]->state = (Rackboot__V1__InstallState)42)
RULE(rack_row_acked_ahead, Rackboot__V1__ApiReply, api_reply_kind(3),
     e->racks->racks[0]->acked_generation = 43)
RULE(rack_row_cache_over_limit, Rackboot__V1__ApiReply, api_reply_kind(3),
     e->racks->racks[0]->cache_bytes = RBPROTO_MAX_CACHE_BYTES + 1)

#define R(id)                                                                                      \
    {                                                                                              \
#id, rule_##id                                                                             \
    }
static const rule rules[] = {
    R(address_15_bytes),
    R(address_17_bytes),
    R(address_missing),
    R(address_multicast),
    R(address_unspecified),
    R(gateway_4_bytes),
    R(dns_server_15_bytes),
    R(dns_servers_9),
    R(macs_none),
    R(macs_17),
    R(mac_5_bytes),
    R(mac_7_bytes),
    R(mac_multicast),
    R(mac_zero),
    R(duid_131_bytes),
    R(duid_2_bytes),
    R(prefix_length_0),
    R(prefix_length_129),
    R(hostname_space),
    R(hostname_empty_label),
    R(hostname_hyphen_label),
    R(hostname_label_64),
    R(search_semicolon),
    R(host_slash),
    R(host_64_chars),
    R(install_id_missing),
    R(install_id_slash),
    R(token_short),
    R(token_space),
    R(attempt_0),
    R(profile_unknown),
    R(duplicate_mac),
    R(duplicate_address),
    R(duplicate_install_id),
    R(duplicate_host),
    R(duplicate_duid),
    R(duplicate_profile),
    R(unchanged_with_intents),
    R(rack_missing),
    R(sha256_31_bytes),
    R(sha256_missing),
    R(kickstart_sha256_33_bytes),
    R(image_name_dotdot),
    R(image_name_slash),
    R(image_url_file),
    R(image_url_space),
    R(image_url_no_host),
    R(image_kind_unknown),
    R(image_kind_unspecified),
    R(two_kernels),
    R(no_initrd),
    R(duplicate_image_name),
    R(images_65),
    R(kernel_args_newline),
    R(template_invalid_utf8),
    R(template_overlong_utf8),
    R(template_surrogate),
    R(template_escape),
    R(root_device_relative),
    R(root_device_dotdot),
    R(root_device_blank),
    R(profile_kind_unknown),
    R(install_with_disk),
    R(install_with_keys),
    R(install_with_user_data),
    R(image_with_kernel),
    R(image_two_disks),
    R(image_with_kickstart),
    R(image_key_newline),
    R(image_key_one_word),
    R(image_keys_65),
    R(image_user_data_mime),
    R(image_user_data_escape),
    R(ip_mode_unknown),
    R(uefi_boot_unknown),
    R(percent_101),
    R(phase_unknown),
    R(phase_unspecified),
    R(seq_0),
    R(seq_not_increasing),
    R(event_message_escape),
    R(event_message_newline),
    R(event_message_truncated_utf8),
    R(event_message_long),
    R(event_mac_5_bytes),
    R(event_host_missing),
    R(duid_learned_without_duid),
    R(events_1001),
    R(power_id_on_install_phase),
    R(power_state_on_install_phase),
    R(install_phase_without_install),
    R(bmc_url_credentials),
    R(bmc_url_scheme),
    R(bmc_url_path),
    R(bmc_url_port),
    R(bmc_password_newline),
    R(bmc_password_without_url),
    R(firmware_unknown),
    R(nonce_31_bytes),
    R(nonce_33_bytes),
    R(hello_role_unspecified),
    R(hello_role_unknown),
    R(hello_no_certificate),
    R(hello_certificate_binary),
    R(hello_no_version),
    R(proof_empty),
    R(proof_1025_bytes),
    R(result_agent_without_rack),
    R(sync_ack_above_held),
    R(sync_wait_too_long),
    R(status_cache_over_limit),
    R(status_cache_limit_over_limit),
    R(render_no_base_url),
    R(render_base_url_https),
    R(render_base_url_ipv4),
    R(render_base_url_not_an_address),
    R(render_base_url_unspecified),
    R(render_base_url_path),
    R(render_base_url_quote),
    R(render_base_url_port_0),
    R(render_base_url_port_65536),
    R(render_base_url_empty_port),
    R(render_base_url_64_chars),
    R(render_dns_5_bytes),
    R(render_dns_9),
    R(render_search_quote),
    R(render_gateway_multicast),
    R(error_code_ok),
    R(error_code_unknown),
    R(agent_request_no_body),
    R(agent_reply_no_body),
    R(api_request_no_body),
    R(install_no_profile),
    R(audit_limit_over),
    R(audit_row_no_who),
    R(audit_row_who_newline),
    R(audit_row_bad_host),
    R(audit_row_count_below_hosts),
    R(audit_row_seq_0),
    R(web_login_no_url),
    R(web_login_plain_http),
    R(web_login_url_space),
    R(install_no_target),
    R(selector_empty),
    R(selector_hosts_and_all),
    R(selector_bad_name),
    R(host_no_rack),
    R(host_mac_5_bytes),
    R(hosts_add_empty),
    R(events_limit),
    R(hosts_list_limit_over),
    R(hosts_list_after_blank),
    R(hosts_list_after_64_chars),
    R(hosts_show_with_limit),
    R(hosts_show_with_after),
    R(status_limit_over),
    R(status_after_slash),
    R(status_named_hosts_paged),
    R(status_named_hosts_after),
    R(status_no_target),
    R(hosts_more_without_rows),
    R(statuses_more_without_rows),
    R(api_reply_status_unspecified),
    R(api_reply_body_with_error),
    R(status_row_percent_101),
    R(status_row_state_unknown),
    R(rack_row_acked_ahead),
    R(rack_row_cache_over_limit),
};

static void test_validation_rules(void **state)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const rule *t = &rules[i];
        ProtobufCMessage *good = t->make(false);
        if (rbproto_validate(good) != 0) {
            fail_msg("%s: the valid message is refused", t->name);
        }

        ProtobufCMessage *bad = t->make(true);
        if (rbproto_validate(bad) != -EBADMSG) {
            fail_msg("%s: validator accepts it", t->name);
        }
        uint8_t *out = NULL;
        size_t len;
        if (rbproto_pack(bad, RBPROTO_MAX_MESSAGE, &out, &len) != -EINVAL || out) {
            fail_msg("%s: rbproto_pack sends it", t->name);
        }
        /* Rules about lengths of 0 and such may not survive the wire
         * (an empty field is no field); what does arrive must be refused. */
        uint8_t *wire = pack_raw(bad, &len);
        ProtobufCMessage *m = NULL;
        int r = unpack_as(bad->descriptor, wire, len, RBPROTO_MAX_MESSAGE, &m);
        if (r != -EBADMSG || m) {
            fail_msg("%s: unpack returns %d", t->name, r);
        }
    }
}

/* model_pb: a profile survives model -> message -> wire -> message -> model
 * with every field, and the message it builds passes validation. */
static void test_model_profile_round_trip(void **state)
{
    model_image images[3] = {
        { .name = (char[]){ "vmlinuz" },
          .kind = IMAGE_KERNEL,
          .url = (char[]){ "http://m/k" },
          .size = 7 },
        { .name = (char[]){ "initrd.img" },
          .kind = IMAGE_INITRD,
          .url = (char[]){ "https://m/i" } },
        { .name = (char[]){ "squashfs.img" },
          .kind = IMAGE_STAGE2,
          .url = (char[]){ "http://m/s" } },
    };
    images[0].sha256[0] = 0xaa;
    images[2].sha256[31] = 0xbb;
    model_profile src = {
        .name = (char[]){ "el9" },
        .images = images,
        .n_images = 3,
        .cmdline = (char[]){ "console=ttyS0" },
        .kickstart = (char[]){ "text\nnetwork --hostname={{hostname}}\n" },
        .overlay = true,
        .ip = IP_MODE_DHCP6,
        .uefi = UEFI_BOOT_UKI,
        .keep_ra = true,
        .any_source = true,
        .root_device = (char[]){ "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4" },
    };
    src.kickstart_sha256[0] = 0x11;

    Rackboot__V1__Profile *m = NULL;
    assert_int_equal(model_profile_to_pb(&src, false, NULL, &m), 0);
    assert_int_equal(rbproto_validate_profile(m), 0);
    size_t len = rackboot__v1__profile__get_packed_size(m);
    uint8_t *wire = malloc(len);
    assert_non_null(wire);
    rackboot__v1__profile__pack(m, wire);
    model_pb_free(m, NULL);
    Rackboot__V1__Profile *back = rackboot__v1__profile__unpack(NULL, len, wire);
    free(wire);
    assert_non_null(back);
    assert_int_equal(rbproto_validate_profile(back), 0);

    model_profile dst;
    assert_int_equal(model_profile_from_pb(back, &dst), 0);
    rackboot__v1__profile__free_unpacked(back, NULL);
    assert_string_equal(dst.name, src.name);
    assert_string_equal(dst.cmdline, src.cmdline);
    assert_string_equal(dst.kickstart, src.kickstart);
    assert_memory_equal(dst.kickstart_sha256, src.kickstart_sha256, 32);
    assert_string_equal(dst.root_device, src.root_device);
    assert_true(dst.overlay && dst.keep_ra && dst.any_source);
    assert_int_equal(dst.ip, IP_MODE_DHCP6);
    assert_int_equal(dst.uefi, UEFI_BOOT_UKI);
    assert_int_equal(dst.n_images, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(dst.images[i].name, images[i].name);
        assert_string_equal(dst.images[i].url, images[i].url);
        assert_int_equal(dst.images[i].kind, images[i].kind);
        assert_int_equal(dst.images[i].size, images[i].size);
        assert_memory_equal(dst.images[i].sha256, images[i].sha256, 32);
    }
    model_profile_clear(&dst);

    /* Unset optional strings stay unset both ways; the hash goes only with
     * a template unless asked for. */
    src.cmdline = NULL;
    src.kickstart = NULL;
    src.root_device = NULL;
    src.ip = IP_MODE_STATIC;
    assert_int_equal(model_profile_to_pb(&src, false, NULL, &m), 0);
    assert_string_equal(m->root_device, "");
    assert_int_equal(m->kickstart_sha256.len, 0);
    assert_int_equal(rbproto_validate_profile(m), 0);
    assert_int_equal(model_profile_from_pb(m, &dst), 0);
    assert_null(dst.cmdline);
    assert_null(dst.kickstart);
    assert_null(dst.root_device);
    assert_int_equal(dst.ip, IP_MODE_STATIC);
    model_profile_clear(&dst);
    model_pb_free(m, NULL);
    assert_int_equal(model_profile_to_pb(&src, true, NULL, &m), 0);
    assert_int_equal(m->kickstart_sha256.len, 32);
    model_pb_free(m, NULL);

    for (image_kind k = IMAGE_KERNEL; k <= IMAGE_DISK; k++) {
        assert_int_equal(model_image_kind_from_pb(model_image_kind_to_pb(k)), k);
    }

    /* An image profile: its kind, keys and user-data template travel. */
    model_image disk = { .name = (char[]){ "disk.img" },
                         .kind = IMAGE_DISK,
                         .url = (char[]){ "http://m/deb12.raw.zst" } };
    disk.sha256[5] = 0x42;
    model_profile img = {
        .name = (char[]){ "deb12" },
        .kind = PROFILE_IMAGE,
        .images = &disk,
        .n_images = 1,
        .root_device = (char[]){ "auto" },
        .ssh_keys = (char *[]){ (char[]){ "ssh-ed25519 AAAA ops@example" },
                                (char[]){ "ssh-rsa BBBB \"odd\": #x" } },
        .n_ssh_keys = 2,
        .user_data = (char[]){ "#cloud-config\nruncmd: [[echo, \"{{hostname}}\"]]\n" },
    };
    assert_int_equal(model_profile_to_pb(&img, true, NULL, &m), 0);
    assert_int_equal(m->kind, RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE);
    assert_int_equal(rbproto_validate_profile(m), 0);
    len = rackboot__v1__profile__get_packed_size(m);
    wire = malloc(len);
    assert_non_null(wire);
    rackboot__v1__profile__pack(m, wire);
    model_pb_free(m, NULL);
    back = rackboot__v1__profile__unpack(NULL, len, wire);
    free(wire);
    assert_non_null(back);
    assert_int_equal(rbproto_validate_profile(back), 0);
    assert_int_equal(model_profile_from_pb(back, &dst), 0);
    rackboot__v1__profile__free_unpacked(back, NULL);
    assert_int_equal(dst.kind, PROFILE_IMAGE);
    assert_int_equal(dst.n_images, 1);
    assert_int_equal(dst.images[0].kind, IMAGE_DISK);
    assert_int_equal(dst.images[0].sha256[5], 0x42);
    assert_int_equal(dst.n_ssh_keys, 2);
    assert_string_equal(dst.ssh_keys[1], img.ssh_keys[1]);
    assert_string_equal(dst.user_data, img.user_data);
    assert_string_equal(dst.root_device, "auto");
    assert_int_equal(model_profile_check(&dst, NULL, 0), 0);
    model_profile_clear(&dst);
}

/* A NUL inside a string is invisible in the C struct (it just ends the
 * string early) and must be caught on the wire. */
static void test_nul_in_string(void **state)
{
    static const char *const targets[] = { "web17x", "tok_nul_AbCdEfGhIjKlMnOp", "phase text",
                                           "a1x" };
    Rackboot__V1__AgentRequest *e = request_events(1);
    e->events->events[0]->host = tstr("%s", targets[0]);
    e->events->events[0]->message = tstr("%s", targets[2]);
    Rackboot__V1__AgentReply *s = reply_sync(2, 1);
    s->sync->intents[1]->token = tstr("%s", targets[1]);
    s->sync->rack = tstr("%s", targets[3]);
    struct {
        const ProtobufCMessage *m;
        const char *needle;
    } cases[] = {
        { &e->base, targets[0] }, /* "web17\0" would validate as "web17" */
        { &e->base, targets[2] },
        { &s->base, targets[1] },
        { &s->base, targets[3] },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len, nlen = strlen(cases[i].needle);
        uint8_t *wire = pack_raw(cases[i].m, &len);
        uint8_t *at = memmem(wire, len, cases[i].needle, nlen);
        ProtobufCMessage *m = NULL;
        assert_non_null(at);

        /* Same length, other byte: still valid, so the patch is in place. */
        at[nlen - 1] = 'y';
        assert_int_equal(unpack_as(cases[i].m->descriptor, wire, len, RBPROTO_MAX_MESSAGE, &m), 0);
        rbproto_free(m);
        m = NULL;
        at[nlen - 1] = '\0';
        assert_int_equal(unpack_as(cases[i].m->descriptor, wire, len, RBPROTO_MAX_MESSAGE, &m),
                         -EBADMSG);
        assert_null(m);
        /* Invalid UTF-8 patched in on the wire, not through the struct. */
        if (i == 1) {
            at[nlen - 1] = 0xff;
            assert_int_equal(unpack_as(cases[i].m->descriptor, wire, len, RBPROTO_MAX_MESSAGE, &m),
                             -EBADMSG);
        }
    }
}

/* Limits that are exactly at the edge are accepted: refusing the largest
 * legal value would be a bug as real as accepting one more. */
static void test_limits_inclusive(void **state)
{
    Rackboot__V1__AgentReply *s = reply_sync(2, 1);
    s->sync->intents[0]->n_macs = RBPROTO_MAX_MACS;
    s->sync->intents[0]->macs = macs_n(RBPROTO_MAX_MACS);
    s->sync->intents[0]->duid = bytes_n(RBPROTO_DUID_MAX, 0x04);
    s->sync->intents[0]->prefix_length = 128;
    s->sync->intents[0]->host = tstr("%063d", 5);
    s->sync->intents[1]->hostname = tstr("%063d.%063d.%063d.%061d", 1, 2, 3, 4);
    assert_int_equal(strlen(s->sync->intents[1]->hostname), RBPROTO_MAX_DNS_NAME);
    assert_int_equal(rbproto_validate(&s->base), 0);

    Rackboot__V1__AgentRequest *e = request_events(2);
    e->events->events[0]->percent = 100;
    e->events->events[0]->message = tstr("%01024d", 1);
    assert_int_equal(rbproto_validate(&e->base), 0);
    rbproto_free(round_trip(&e->base, NULL));

    /* A page: its limit at the cap, after a name of the longest length. */
    Rackboot__V1__ApiRequest *hl = api_request_kind(15);
    hl->hosts_list->limit = RBPROTO_MAX_PAGE_ROWS;
    hl->hosts_list->after = tstr("%063d", 5);
    assert_int_equal(rbproto_validate(&hl->base), 0);
    Rackboot__V1__ApiRequest *st = api_request_kind(16);
    st->status->limit = RBPROTO_MAX_PAGE_ROWS;
    st->status->target = make_selector(1); /* racks page too */
    assert_int_equal(rbproto_validate(&st->base), 0);
    rbproto_free(round_trip(&st->base, NULL));
}

/* ---- Packing ----------------------------------------------------------- */

static void test_pack_limits(void **state)
{
    Rackboot__V1__AgentRequest *e = request_hello();
    size_t size, len;
    uint8_t *buf = NULL;

    assert_int_equal(rbproto_packed_size(&e->base, RBPROTO_MAX_MESSAGE, &size), 0);
    assert_int_equal(size, protobuf_c_message_get_packed_size(&e->base));
    assert_int_equal(rbproto_pack(&e->base, size - 1, &buf, &len), -E2BIG);
    assert_null(buf);
    assert_int_equal(rbproto_pack(&e->base, size, &buf, &len), 0);
    assert_int_equal(len, size);

    uint8_t *into = malloc(size);
    size_t into_len = 12345;
    assert_int_equal(rbproto_pack_into(&e->base, into, size - 1, &into_len), -ENOSPC);
    assert_int_equal(into_len, 12345);
    assert_int_equal(rbproto_pack_into(&e->base, into, size, &into_len), 0);
    assert_int_equal(into_len, size);
    assert_memory_equal(into, buf, size);
    free(into);
    free(buf);

    /* A type without a validator of its own packs as is. */
    Rackboot__V1__RackRow row = RACKBOOT__V1__RACK_ROW__INIT;
    assert_int_equal(rbproto_validate(&row.base), -EOPNOTSUPP);
    assert_int_equal(rbproto_packed_size(&row.base, 16, &size), 0);
    assert_int_equal(size, 0);
}

static void test_free_null(void **state)
{
    assert_null(rbproto_free(NULL));
    assert_null(rbproto_agent_request_free(NULL));
    assert_null(rbproto_agent_reply_free(NULL));
    assert_null(rbproto_api_request_free(NULL));
    assert_null(rbproto_api_reply_free(NULL));
}

/* ---- Enum names -------------------------------------------------------- */

/* Every value the schema defines has a name, except UNSPECIFIED; names
 * round-trip. A new enum value without a name fails here. */
static void check_enum_names(const ProtobufCEnumDescriptor *d, const char *(*to)(int),
                             int (*from)(const char *, int *))
{
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        const char *s = to(v);
        bool unspecified = strstr(d->values[i].name, "UNSPECIFIED") != NULL;
        if (unspecified) {
            assert_null(s);
            continue;
        }
        if (!s) {
            fail_msg("%s: no name for %s", d->name, d->values[i].name);
        }
        int back = -1;
        assert_int_equal(from(s, &back), 0);
        assert_int_equal(back, v);
    }
    int untouched = 77;
    assert_null(to(1000));
    assert_int_equal(from("no_such_value", &untouched), -EINVAL);
    assert_int_equal(from("", &untouched), -EINVAL);
    assert_int_equal(from(NULL, &untouched), -EINVAL);
    assert_int_equal(untouched, 77);
}

#define ENUM_ADAPT(fn, type)                                                                       \
    static const char *fn##_to(int v)                                                              \
    {                                                                                              \
        return rbproto_##fn##_to_string((type)v);                                                  \
    }                                                                                              \
    static int fn##_from(const char *s, int *ret)                                                  \
    {                                                                                              \
        type v;                                                                                    \
        int r = rbproto_##fn##_from_string(s, &v);                                                 \
        if (r == 0) {                                                                              \
            *ret = (int)v;                                                                         \
        }                                                                                          \
        return r;                                                                                  \
    }

ENUM_ADAPT(phase, Rackboot__V1__Phase)
ENUM_ADAPT(install_state, Rackboot__V1__InstallState)
ENUM_ADAPT(image_kind, Rackboot__V1__ImageKind)
ENUM_ADAPT(role, Rackboot__V1__Role)
ENUM_ADAPT(status, Rackboot__V1__Status)
ENUM_ADAPT(ip_mode, Rackboot__V1__IpMode)
ENUM_ADAPT(skip, Rackboot__V1__Skip)

static void test_enum_names(void **state)
{
    check_enum_names(&rackboot__v1__phase__descriptor, phase_to, phase_from);
    check_enum_names(&rackboot__v1__install_state__descriptor, install_state_to,
                     install_state_from);
    check_enum_names(&rackboot__v1__image_kind__descriptor, image_kind_to, image_kind_from);
    check_enum_names(&rackboot__v1__role__descriptor, role_to, role_from);
    check_enum_names(&rackboot__v1__status__descriptor, status_to, status_from);
    check_enum_names(&rackboot__v1__ip_mode__descriptor, ip_mode_to, ip_mode_from);
    check_enum_names(&rackboot__v1__skip__descriptor, skip_to, skip_from);
    assert_string_equal(rbproto_skip_to_string(RACKBOOT__V1__SKIP__SKIP_ACTIVE), "active");

    /* The names the CLI's JSON and the logs promise. */
    assert_string_equal(rbproto_phase_to_string(RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND),
                        "dhcp_bound");
    assert_string_equal(rbproto_phase_to_string(RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED),
                        "kernel_fetched");
    assert_string_equal(rbproto_phase_to_string(RACKBOOT__V1__PHASE__PHASE_INSTALLED), "installed");
    assert_string_equal(
        rbproto_install_state_to_string(RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_DISPATCHED),
        "dispatched");
    assert_string_equal(rbproto_image_kind_to_string(RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2),
                        "stage2");
    assert_string_equal(rbproto_status_to_string(RACKBOOT__V1__STATUS__STATUS_NOT_FOUND),
                        "not_found");
    assert_string_equal(rbproto_ip_mode_to_string(RACKBOOT__V1__IP_MODE__IP_MODE_STATIC), "static");
}

/* ---- Fuzz seed corpus -------------------------------------------------- */

typedef struct seed {
    const char *name;
    const ProtobufCMessage *(*make)(void);
} seed;

static const ProtobufCMessage *seed_hello(void)
{
    return &request_hello()->base;
}
static const ProtobufCMessage *seed_proof(void)
{
    return &request_proof()->base;
}
static const ProtobufCMessage *seed_sync_request(void)
{
    return &request_sync()->base;
}
static const ProtobufCMessage *seed_events(void)
{
    return &request_events(13)->base;
}
static const ProtobufCMessage *seed_challenge(void)
{
    return &reply_challenge()->base;
}
static const ProtobufCMessage *seed_result(void)
{
    return &reply_result()->base;
}
static const ProtobufCMessage *seed_sync(void)
{
    return &reply_sync(3, 1)->base;
}
static const ProtobufCMessage *seed_ack(void)
{
    return &reply_ack()->base;
}
static const ProtobufCMessage *seed_error(void)
{
    return &reply_error()->base;
}
static const ProtobufCMessage *seed_hosts_add(void)
{
    return &api_hosts_add(3)->base;
}
static const ProtobufCMessage *seed_install(void)
{
    return &api_install()->base;
}
static const ProtobufCMessage *seed_events_request(void)
{
    return &api_request_kind(13)->base;
}
static const ProtobufCMessage *seed_profiles_reply(void)
{
    return &api_reply_kind(4)->base;
}
static const ProtobufCMessage *seed_status_reply(void)
{
    return &api_reply_statuses(3)->base;
}
static const ProtobufCMessage *seed_events_reply(void)
{
    return &api_reply_kind(7)->base;
}

static const seed seeds[] = {
    { "agent_request-auth_hello", seed_hello },
    { "agent_request-auth_proof", seed_proof },
    { "agent_request-sync", seed_sync_request },
    { "agent_request-events", seed_events },
    { "agent_reply-auth_challenge", seed_challenge },
    { "agent_reply-auth_result", seed_result },
    { "agent_reply-sync", seed_sync },
    { "agent_reply-event_ack", seed_ack },
    { "agent_reply-error", seed_error },
    { "api_request-hosts_add", seed_hosts_add },
    { "api_request-install", seed_install },
    { "api_request-events", seed_events_request },
    { "api_reply-profiles", seed_profiles_reply },
    { "api_reply-statuses", seed_status_reply },
    { "api_reply-events", seed_events_reply },
};

static int write_corpus(const char *dir)
{
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        size_t len;
        uint8_t *buf;
        char path[4096];
        if (rbproto_pack(seeds[i].make(), RBPROTO_MAX_MESSAGE, &buf, &len) < 0) {
            fprintf(stderr, "seed %s does not pack\n", seeds[i].name);
            return 1;
        }
        snprintf(path, sizeof(path), "%s/%s.pb", dir, seeds[i].name);
        FILE *f = fopen(path, "wbe");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        free(buf);
    }
    arena_free(NULL);
    return 0;
}

/* The committed seeds still unpack as the envelope their name says: a
 * schema change that breaks them makes the fuzzer start from noise. */
static void test_corpus_seeds_valid(void **state)
{
    static const struct {
        const char *prefix;
        const ProtobufCMessageDescriptor *desc;
    } kinds[] = {
        { "agent_request-", &rackboot__v1__agent_request__descriptor },
        { "agent_reply-", &rackboot__v1__agent_reply__descriptor },
        { "api_request-", &rackboot__v1__api_request__descriptor },
        { "api_reply-", &rackboot__v1__api_reply__descriptor },
    };
    DIR *d = opendir(RBPROTO_CORPUS_DIR);
    struct dirent *de;
    unsigned n = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        const ProtobufCMessageDescriptor *desc = NULL;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strncmp(de->d_name, kinds[k].prefix, strlen(kinds[k].prefix)) == 0) {
                desc = kinds[k].desc;
            }
        }
        if (!desc) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", RBPROTO_CORPUS_DIR, de->d_name);
        FILE *f = fopen(path, "rbe");
        assert_non_null(f);
        uint8_t *buf = talloc(1 << 20);
        size_t len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        ProtobufCMessage *m = NULL;
        if (unpack_as(desc, buf, len, RBPROTO_MAX_MESSAGE, &m) != 0) {
            fail_msg("seed %s no longer unpacks", de->d_name);
        }
        rbproto_free(m);
        n++;
    }
    closedir(d);
    assert_int_equal(n, sizeof(seeds) / sizeof(seeds[0]));
}

int main(void)
{
    const char *corpus = getenv("RBPROTO_WRITE_CORPUS");
    if (corpus) {
        return write_corpus(corpus);
    }

#define T(fn) cmocka_unit_test_teardown(fn, arena_free)
    const struct CMUnitTest tests[] = {
        T(test_round_trip_rack_sync),
        T(test_round_trip_agent_link),
        T(test_round_trip_event_batch),
        T(test_round_trip_api),
        T(test_intent_count_limit),
        T(test_truncated_at_every_length),
        T(test_truncated_api_reply),
        T(test_length_past_end),
        T(test_wrong_wire_types),
        T(test_over_limit_refused_unread),
        T(test_allocation_budget),
        T(test_budget_holds_for_repacked_form),
        T(test_budget_realistic_messages_fit),
        T(test_validation_rules),
        T(test_model_profile_round_trip),
        T(test_nul_in_string),
        T(test_limits_inclusive),
        T(test_pack_limits),
        T(test_free_null),
        T(test_enum_names),
        T(test_corpus_seeds_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
