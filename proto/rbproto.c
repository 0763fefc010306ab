/* rbproto: bounded packing and unpacking of the rackboot wire schema. See
 * rbproto.h for the contract; this file is in four parts: the budgeted
 * allocator, the raw wire check, the validators, and enum names. */
#include "rbproto.h"
#include "rbproto-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"
#include "model/profile.h"
#include "util.h"

/* Every reason for refusing a message goes to the debug log and nowhere
 * else: the daemon logs the refusal once, with the peer's name. */
static int reject(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int reject(const char *fmt, ...)
{
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_debug("rbproto: invalid message: %s", why);
    }
    return -EBADMSG;
}

/* ---- Budgeted allocator ------------------------------------------------
 *
 * protobuf-c allocates as it parses: one struct per submessage, one array
 * per repeated field, one copy per string and bytes field. Its length checks
 * stop a field from claiming more bytes than the buffer holds, but an empty
 * submessage costs 2 bytes on the wire and ~100 bytes in C, so without a
 * budget 16 MiB of input could cost gigabytes. Each unpack gets its own
 * budget; past it allocations fail and protobuf-c gives up.
 *
 * Every block carries a header linking it into its budget, for two reasons:
 * rbproto_free() finds the allocator from the message pointer alone, and
 * destroying the budget frees whatever a protobuf-c error path might leave
 * behind, so no malformed input can leak memory. */

typedef struct budget budget;
typedef struct block_header block_header;

struct block_header {
    budget *owner;
    block_header *prev, *next;
    size_t size; /* including this header */
};

/* Keeps the memory after the header aligned for any type. */
typedef union block {
    block_header h;
    max_align_t align;
} block;

struct budget {
    ProtobufCAllocator allocator;
    size_t limit;
    size_t used;
    size_t peak; /* most bytes allocated at once, for rbproto_unpack_peak() */
    block_header *blocks;
    bool over_budget;
    bool out_of_memory;
};

static void *budget_alloc(void *data, size_t size)
{
    budget *b = data;

    /* used <= limit always holds, so the subtraction cannot wrap. */
    if (size > b->limit - b->used || sizeof(block) > b->limit - b->used - size) {
        b->over_budget = true;
        return NULL;
    }
    block *blk = malloc(sizeof(block) + size);
    if (!blk) {
        b->out_of_memory = true;
        return NULL;
    }
    blk->h = (block_header){
        .owner = b,
        .prev = NULL,
        .next = b->blocks,
        .size = sizeof(block) + size,
    };
    if (b->blocks) {
        b->blocks->prev = &blk->h;
    }
    b->blocks = &blk->h;
    b->used += blk->h.size;
    if (b->used > b->peak) {
        b->peak = b->used;
    }
    return blk + 1;
}

static void budget_free(void *data, void *p)
{
    budget *b = data;

    if (!p) {
        return;
    }
    block *blk = (block *)p - 1;
    RB_ASSERT(blk->h.owner == b && b->used >= blk->h.size);
    if (blk->h.prev) {
        blk->h.prev->next = blk->h.next;
    } else {
        b->blocks = blk->h.next;
    }
    if (blk->h.next) {
        blk->h.next->prev = blk->h.prev;
    }
    b->used -= blk->h.size;
    free(blk);
}

size_t rbproto_budget_limit(size_t len)
{
    if (len > (RBPROTO_BUDGET_MAX - RBPROTO_BUDGET_BASE) / RBPROTO_BUDGET_FACTOR) {
        return RBPROTO_BUDGET_MAX;
    }
    return RBPROTO_BUDGET_BASE + RBPROTO_BUDGET_FACTOR * len;
}

static budget *budget_new(size_t len)
{
    budget *b = calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->allocator = (ProtobufCAllocator){
        .alloc = budget_alloc,
        .free = budget_free,
        .allocator_data = b,
    };
    b->limit = rbproto_budget_limit(len);
    return b;
}

/* Frees every block still allocated, then the budget. */
static budget *budget_free_all(budget *b)
{
    if (!b) {
        return NULL;
    }
    while (b->blocks) {
        budget_free(b, (block *)b->blocks + 1);
    }
    free(b);
    return NULL;
}

/* ---- Raw wire check ----------------------------------------------------
 *
 * protobuf-c copies a string field into a NUL-terminated char *, so a NUL
 * inside the string silently cuts it short: "web1\0web2" would be checked
 * and used as "web1". Only the raw bytes show it, so walk them once (after
 * protobuf-c accepted them, through a bounds-checked cursor all the same)
 * and refuse any string field containing a NUL. The walk descends only into
 * fields the schema says are messages; the schema has no recursive message,
 * and the depth limit keeps it so if one is ever added. */

#define WIRE_MAX_DEPTH 16
#define WIRE_MAX_FIELD 536870911u /* 2^29 - 1, the largest field number */

enum {
    WIRE_VARINT = 0,
    WIRE_FIXED64 = 1,
    WIRE_LEN = 2,
    WIRE_FIXED32 = 5,
};

static int wire_read_varint(cursor *c, uint64_t *ret)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t byte;
        if (cursor_read_u8(c, &byte) < 0) {
            return -EBADMSG;
        }
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -EBADMSG;
}

static int wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                              size_t len, unsigned depth)
{
    cursor c = cursor_make(buf, len);

    if (depth > WIRE_MAX_DEPTH) {
        return reject("nested deeper than %d", WIRE_MAX_DEPTH);
    }
    while (!cursor_at_end(&c)) {
        uint64_t key, n;
        const uint8_t *p;

        if (wire_read_varint(&c, &key) < 0) {
            return reject("%s: bad field key", desc->name);
        }
        /* Field 0 does not exist, and protobuf-c keeps it as an unknown
         * field when its key is a padded varint (81 00) but refuses the
         * same field once repacked as 01: found by fuzz_proto. Refusing it
         * here keeps "accepted" meaning "can be forwarded and re-read". */
        if (key >> 3 == 0 || key >> 3 > WIRE_MAX_FIELD) {
            return reject("%s: field number %llu", desc->name, (unsigned long long)(key >> 3));
        }
        switch (key & 7) {
        case WIRE_VARINT:
            if (wire_read_varint(&c, &n) < 0) {
                return reject("%s: bad varint", desc->name);
            }
            break;
        case WIRE_FIXED64:
            if (cursor_skip(&c, 8) < 0) {
                return reject("%s: short fixed64", desc->name);
            }
            break;
        case WIRE_FIXED32:
            if (cursor_skip(&c, 4) < 0) {
                return reject("%s: short fixed32", desc->name);
            }
            break;
        case WIRE_LEN: {
            if (wire_read_varint(&c, &n) < 0 || n > cursor_remaining(&c) ||
                cursor_read_ref(&c, (size_t)n, &p) < 0) {
                return reject("%s: bad length", desc->name);
            }
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
            if (!f) {
                break; /* unknown field: skipped, as proto3 says */
            }
            if (f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)n)) {
                return reject("%s.%s: NUL in string", desc->name, f->name);
            }
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int r = wire_check_strings(f->descriptor, p, (size_t)n, depth + 1);
                if (r < 0) {
                    return r;
                }
            }
            break;
        }
        default:
            /* Groups (3, 4) are proto2-only and 6, 7 do not exist. */
            return reject("%s: wire type %u", desc->name, (unsigned)(key & 7));
        }
    }
    return 0;
}

/* ---- Unpacking --------------------------------------------------------- */

typedef int (*validate_fn)(const ProtobufCMessage *m);

static int unpack_envelope(const ProtobufCMessageDescriptor *desc, validate_fn validate,
                           const uint8_t *buf, size_t len, size_t max, ProtobufCMessage **ret)
{
    RB_ASSERT(ret);

    /* Before anything reads buf: the caller's limit is the first defence. */
    if (len > max) {
        return -E2BIG;
    }
    if (!buf && len > 0) {
        return -EINVAL;
    }
    budget *b = budget_new(len);
    if (!b) {
        return -ENOMEM;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &b->allocator, len, buf);
    if (!m) {
        int r = b->out_of_memory ? -ENOMEM
                : b->over_budget ? -E2BIG
                                 : reject("%s: protobuf-c refused it", desc->name);
        budget_free_all(b);
        return r;
    }
    /* The budget grew with len, but padded varints make len longer than
     * the canonical length of the same message: hold the budget
     * against the length we would repack it to, so whatever is accepted can
     * be forwarded, stored and read back (found by fuzz_proto). */
    int r = 0;
    if (b->peak > rbproto_budget_limit(protobuf_c_message_get_packed_size(m))) {
        r = -E2BIG;
    }
    if (r >= 0) {
        r = wire_check_strings(desc, buf, len, 0);
    }
    if (r >= 0) {
        r = validate(m);
    }
    if (r < 0) {
        protobuf_c_message_free_unpacked(m, &b->allocator);
        budget_free_all(b);
        return r;
    }
    *ret = m;
    return 0;
}

ProtobufCMessage *rbproto_free(ProtobufCMessage *m)
{
    if (!m) {
        return NULL;
    }
    budget *b = ((block *)m - 1)->h.owner;
    protobuf_c_message_free_unpacked(m, &b->allocator);
    budget_free_all(b);
    return NULL;
}

int rbproto_unpack_peak(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        size_t *ret_peak)
{
    budget *b = budget_new(len);

    if (!b) {
        return -ENOMEM;
    }
    b->limit = SIZE_MAX;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &b->allocator, len, buf);
    size_t peak = b->peak;
    int r = m ? 0 : b->out_of_memory ? -ENOMEM : -EBADMSG;
    if (m) {
        protobuf_c_message_free_unpacked(m, &b->allocator);
    }
    budget_free_all(b);
    if (r < 0) {
        return r;
    }
    *ret_peak = peak;
    return 0;
}

/* Typed front ends: unpack one envelope type, free it. */
#define ENVELOPE(fn, type, desc)                                                                   \
    static int fn##_generic(const ProtobufCMessage *m)                                             \
    {                                                                                              \
        return rbproto_validate_##fn((const type *)m);                                             \
    }                                                                                              \
    int rbproto_unpack_##fn(const uint8_t *buf, size_t len, size_t max, type **ret)                \
    {                                                                                              \
        ProtobufCMessage *m = NULL;                                                                \
        int r = unpack_envelope(&desc, fn##_generic, buf, len, max, &m);                           \
        if (r < 0) {                                                                               \
            return r;                                                                              \
        }                                                                                          \
        *ret = (type *)m;                                                                          \
        return 0;                                                                                  \
    }                                                                                              \
    type *rbproto_##fn##_free(type *m)                                                             \
    {                                                                                              \
        if (m) {                                                                                   \
            rbproto_free(&m->base);                                                                \
        }                                                                                          \
        return NULL;                                                                               \
    }

ENVELOPE(agent_request, Rackboot__V1__AgentRequest, rackboot__v1__agent_request__descriptor)
ENVELOPE(agent_reply, Rackboot__V1__AgentReply, rackboot__v1__agent_reply__descriptor)
ENVELOPE(api_request, Rackboot__V1__ApiRequest, rackboot__v1__api_request__descriptor)
ENVELOPE(api_reply, Rackboot__V1__ApiReply, rackboot__v1__api_reply__descriptor)

/* ---- Field checks ------------------------------------------------------ */

enum { OPTIONAL = false, REQUIRED = true };

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more) {
            return false;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += more + 1;
    }
    return true;
}

/* What characters a string field may hold. The narrow classes exist because
 * those strings become file names, URL paths, DNS names or lines of an iPXE
 * script on the agent; the agent still escapes per output, this is the
 * second wall. */
typedef enum text_class {
    TEXT_NAME,      /* host, rack, profile, agent: [A-Za-z0-9._-], alnum first */
    TEXT_FILE_NAME, /* image file: [A-Za-z0-9._+-], alnum first: no "..", no "/" */
    TEXT_ID,        /* install id, token: [A-Za-z0-9_-], safe in a URL path */
    TEXT_DNS_NAME,  /* LDH labels of 1..63, RFC 1123 §2.1 */
    TEXT_URL,       /* http:// or https://, printable ASCII without spaces */
    TEXT_ARGS,      /* printable ASCII: a newline would end the iPXE line */
    TEXT_PEM,       /* printable ASCII and line breaks */
    TEXT_LINE,      /* UTF-8 without control characters (terminal escapes) */
    TEXT_MULTILINE, /* UTF-8; tab, CR and LF are the only controls */
} text_class;

static bool dns_name_valid(const char *s, size_t n)
{
    size_t label = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-') {
            return false;
        }
        if (c == '-' && label == 0) {
            return false;
        }
        if (++label > 63) {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

static bool text_chars_valid(const char *s, size_t n, text_class cls)
{
    const unsigned char *u = (const unsigned char *)s;

    switch (cls) {
    case TEXT_NAME:
    case TEXT_FILE_NAME:
    case TEXT_ID:
        if (cls != TEXT_ID && !is_alnum(u[0])) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            bool ok = is_alnum(u[i]) || u[i] == '-' || u[i] == '_' ||
                      (cls != TEXT_ID && u[i] == '.') || (cls == TEXT_FILE_NAME && u[i] == '+');
            if (!ok) {
                return false;
            }
        }
        return true;
    case TEXT_DNS_NAME:
        return dns_name_valid(s, n);
    case TEXT_URL:
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
            return false; /* libcurl would also read file://, and worse */
        }
        for (size_t i = 0; i < n; i++) {
            if (u[i] <= 0x20 || u[i] >= 0x7f) {
                return false;
            }
        }
        return n > (s[4] == 's' ? strlen("https://") : strlen("http://")); /* a host */
    case TEXT_ARGS:
    case TEXT_PEM:
        for (size_t i = 0; i < n; i++) {
            bool ok = (u[i] >= 0x20 && u[i] < 0x7f) ||
                      (cls == TEXT_PEM && (u[i] == '\n' || u[i] == '\r'));
            if (!ok) {
                return false;
            }
        }
        return true;
    case TEXT_LINE:
    case TEXT_MULTILINE:
        for (size_t i = 0; i < n; i++) {
            bool control = u[i] < 0x20 || u[i] == 0x7f;
            if (control &&
                !(cls == TEXT_MULTILINE && (u[i] == '\t' || u[i] == '\n' || u[i] == '\r'))) {
                return false;
            }
        }
        return utf8_valid(u, n);
    }
    return false;
}

static int check_text(const char *what, const char *s, text_class cls, size_t max, bool required)
{
    /* A message we built ourselves may leave a string NULL: same as "". */
    size_t n = s ? strnlen(s, max + 1) : 0;

    if (n == 0) {
        return required ? reject("%s: missing", what) : 0;
    }
    if (n > max) {
        return reject("%s: longer than %zu", what, max);
    }
    if (!text_chars_valid(s, n, cls)) {
        return reject("%s: invalid characters", what);
    }
    return 0;
}

static int check_name(const char *what, const char *s, bool required)
{
    return check_text(what, s, TEXT_NAME, RBPROTO_MAX_NAME, required);
}

/* An agent's name: its rack's, or "RACK/N" for the rack's agent N (2 ..
 * RBPROTO_MAX_AGENT_INSTANCE), as pki.h names agent certificates. */
static int check_agent_name(const char *what, const char *s, bool required)
{
    size_t n = s ? strnlen(s, RBPROTO_MAX_NAME + 1) : 0;
    const char *slash = n > 0 ? memchr(s, '/', n) : NULL;
    if (!slash) {
        return check_name(what, s, required);
    }
    size_t rack_len = (size_t)(slash - s);
    if (n > RBPROTO_MAX_NAME || rack_len == 0 || n - rack_len != 2 || slash[1] < '2' ||
        slash[1] > (char)('0' + RBPROTO_MAX_AGENT_INSTANCE) ||
        !text_chars_valid(s, rack_len, TEXT_NAME)) {
        return reject("%s: not an agent's name", what);
    }
    return 0;
}

static int check_id(const char *what, const char *s, bool required)
{
    return check_text(what, s, TEXT_ID, RBPROTO_MAX_ID, required);
}

static int check_line(const char *what, const char *s, size_t max)
{
    return check_text(what, s, TEXT_LINE, max, OPTIONAL);
}

static int check_count(const char *what, size_t n, size_t min, size_t max)
{
    if (n < min || n > max) {
        return reject("%s: %zu entries, allowed %zu..%zu", what, n, min, max);
    }
    return 0;
}

static int check_len(const char *what, const ProtobufCBinaryData *b, size_t want, bool required)
{
    if (b->len == 0 && !required) {
        return 0;
    }
    if (b->len != want || !b->data) {
        return reject("%s: %zu bytes, want %zu", what, b->len, want);
    }
    return 0;
}

/* A host's own address: not ::, ::1 or multicast. */
static int check_addr(const char *what, const ProtobufCBinaryData *b, bool required)
{
    static const uint8_t zero[RBPROTO_ADDR_LEN];
    int r = check_len(what, b, RBPROTO_ADDR_LEN, required);

    if (r < 0 || b->len == 0) {
        return r;
    }
    if (b->data[0] == 0xff) {
        return reject("%s: multicast address", what);
    }
    if (memcmp(b->data, zero, RBPROTO_ADDR_LEN - 1) == 0 && b->data[15] <= 1) {
        return reject("%s: unspecified or loopback address", what);
    }
    return 0;
}

/* A NIC's address: unicast (I/G bit clear, IEEE 802 §8.2) and not zero. */
static int check_mac(const char *what, const ProtobufCBinaryData *b, bool required)
{
    static const uint8_t zero[RBPROTO_MAC_LEN];
    int r = check_len(what, b, RBPROTO_MAC_LEN, required);

    if (r < 0 || b->len == 0) {
        return r;
    }
    if (b->data[0] & 1) {
        return reject("%s: group MAC address", what);
    }
    if (memcmp(b->data, zero, RBPROTO_MAC_LEN) == 0) {
        return reject("%s: zero MAC address", what);
    }
    return 0;
}

static int check_duid(const char *what, const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        return 0;
    }
    if (b->len < RBPROTO_DUID_MIN || b->len > RBPROTO_DUID_MAX || !b->data) {
        return reject("%s: %zu bytes, allowed %u..%u", what, b->len, RBPROTO_DUID_MIN,
                      RBPROTO_DUID_MAX);
    }
    return 0;
}

static int check_prefix_length(const char *what, uint32_t v)
{
    if (v < 1 || v > 128) {
        return reject("%s: prefix length %u", what, v);
    }
    return 0;
}

static int check_percent(const char *what, uint32_t v)
{
    if (v > 100) {
        return reject("%s: percent %u", what, v);
    }
    return 0;
}

/* Known to this build's schema. Unknown values are refused rather than
 * guessed at; see the top of rackboot.proto for the upgrade order. */
static int check_enum(const char *what, const ProtobufCEnumDescriptor *d, int v, bool required)
{
    if (!protobuf_c_enum_descriptor_get_value(d, v)) {
        return reject("%s: unknown value %d", what, v);
    }
    if (v == 0 && required) {
        return reject("%s: unspecified", what);
    }
    return 0;
}

/* Each element of a repeated field through its validator, saying which one
 * failed. */
#define CHECK_EACH(what, arr, n, fn)                                                               \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            int r_ = fn((arr)[i_]);                                                                \
            if (r_ < 0) {                                                                          \
                log_debug("rbproto: ... in %s[%zu]", what, i_);                                    \
                return r_;                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static int check_names(const char *what, char *const *names, size_t n, size_t min, size_t max)
{
    TRY(check_count(what, n, min, max));
    for (size_t i = 0; i < n; i++) {
        TRY(check_name(what, names[i], REQUIRED));
    }
    return 0;
}

/* ---- Uniqueness inside a sync ------------------------------------------ */

typedef struct key {
    const uint8_t *p;
    size_t len;
} key;

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->len ? memcmp(x->p, y->p, x->len) : 0;
}

static key key_str(const char *s)
{
    return (key){ .p = (const uint8_t *)s, .len = s ? strlen(s) : 0 };
}

static key key_bytes(const ProtobufCBinaryData *b)
{
    return (key){ .p = b->data, .len = b->len };
}

/* Sorts keys and refuses the first duplicate. */
static int keys_unique(const char *what, key *keys, size_t n)
{
    if (n < 2) {
        return 0;
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&keys[i - 1], &keys[i]) == 0) {
            return reject("%s: duplicate", what);
        }
    }
    return 0;
}

/* The intents of one rack must identify hosts unambiguously: the agent's
 * DHCPv6 server answers by MAC or DUID and each address is leased once. */
static int sync_check_consistent(const Rackboot__V1__SyncResponse *m)
{
    size_t n_macs = 0, n_duids = 0, n_profiles = m->n_profiles, n_intents = m->n_intents;
    int r;

    for (size_t i = 0; i < n_intents; i++) {
        n_macs += m->intents[i]->n_macs;
    }
    /* Sized for the largest keyed set (MACs or intents); counts are capped
     * by the caller. */
    size_t cap = n_macs > n_intents ? n_macs : n_intents;
    key *keys = calloc(cap ? cap : 1, sizeof(*keys));
    key *profiles = calloc(n_profiles ? n_profiles : 1, sizeof(*profiles));
    if (!keys || !profiles) {
        r = -ENOMEM;
        goto out;
    }

    for (size_t i = 0; i < n_profiles; i++) {
        profiles[i] = key_str(m->profiles[i]->name);
    }
    r = keys_unique("sync.profiles.name", profiles, n_profiles);
    if (r < 0) {
        goto out;
    }
    for (size_t i = 0; i < n_intents; i++) {
        key k = key_str(m->intents[i]->profile);
        if (!bsearch(&k, profiles, n_profiles, sizeof(*profiles), key_cmp)) {
            r = reject("sync.intents[%zu].profile: not in this sync", i);
            goto out;
        }
    }

    for (size_t i = 0; i < n_intents; i++) {
        keys[i] = key_str(m->intents[i]->install_id);
    }
    r = keys_unique("sync.intents.install_id", keys, n_intents);
    if (r < 0) {
        goto out;
    }
    for (size_t i = 0; i < n_intents; i++) {
        keys[i] = key_str(m->intents[i]->host);
    }
    r = keys_unique("sync.intents.host", keys, n_intents);
    if (r < 0) {
        goto out;
    }
    for (size_t i = 0; i < n_intents; i++) {
        keys[i] = key_bytes(&m->intents[i]->address);
    }
    r = keys_unique("sync.intents.address", keys, n_intents);
    if (r < 0) {
        goto out;
    }
    for (size_t i = 0; i < n_intents; i++) {
        if (m->intents[i]->duid.len > 0) {
            keys[n_duids++] = key_bytes(&m->intents[i]->duid);
        }
    }
    r = keys_unique("sync.intents.duid", keys, n_duids);
    if (r < 0) {
        goto out;
    }
    n_macs = 0;
    for (size_t i = 0; i < n_intents; i++) {
        for (size_t j = 0; j < m->intents[i]->n_macs; j++) {
            keys[n_macs++] = key_bytes(&m->intents[i]->macs[j]);
        }
    }
    r = keys_unique("sync.intents.macs", keys, n_macs);
out:
    free(keys);
    free(profiles);
    return r;
}

/* ---- Validators -------------------------------------------------------- */

#define ENUM_DESC(name) (&rackboot__v1__##name##__descriptor)

int rbproto_validate_auth_hello(const Rackboot__V1__AuthHello *m)
{
    if (!m) {
        return reject("auth_hello: missing");
    }
    TRY(check_enum("auth_hello.role", ENUM_DESC(role), m->role, REQUIRED));
    TRY(check_text("auth_hello.certificate_pem", m->certificate_pem, TEXT_PEM, RBPROTO_MAX_PEM,
                   REQUIRED));
    TRY(check_text("auth_hello.software_version", m->software_version, TEXT_LINE,
                   RBPROTO_MAX_VERSION, REQUIRED));
    return check_name("auth_hello.rack_claim", m->rack_claim, OPTIONAL);
}

int rbproto_validate_auth_challenge(const Rackboot__V1__AuthChallenge *m)
{
    if (!m) {
        return reject("auth_challenge: missing");
    }
    return check_len("auth_challenge.nonce", &m->nonce, RBPROTO_NONCE_LEN, REQUIRED);
}

int rbproto_validate_auth_proof(const Rackboot__V1__AuthProof *m)
{
    if (!m) {
        return reject("auth_proof: missing");
    }
    if (m->signature.len == 0 || m->signature.len > RBPROTO_MAX_SIGNATURE || !m->signature.data) {
        return reject("auth_proof.signature: %zu bytes", m->signature.len);
    }
    return 0;
}

int rbproto_validate_auth_result(const Rackboot__V1__AuthResult *m)
{
    if (!m) {
        return reject("auth_result: missing");
    }
    TRY(check_enum("auth_result.role", ENUM_DESC(role), m->role, REQUIRED));
    if (m->role == RACKBOOT__V1__ROLE__ROLE_AGENT) {
        TRY(check_agent_name("auth_result.name", m->name, REQUIRED));
    } else {
        TRY(check_name("auth_result.name", m->name, REQUIRED));
    }
    /* An agent's identity names its rack; it is what scopes every later
     * message. */
    TRY(check_name("auth_result.rack", m->rack, m->role == RACKBOOT__V1__ROLE__ROLE_AGENT));
    return check_text("auth_result.controller_version", m->controller_version, TEXT_LINE,
                      RBPROTO_MAX_VERSION, REQUIRED);
}

int rbproto_validate_sync_request(const Rackboot__V1__SyncRequest *m)
{
    if (!m) {
        return reject("sync_request: missing");
    }
    if (m->acked_generation > m->held_generation) {
        return reject("sync_request: acked generation %llu above held %llu",
                      (unsigned long long)m->acked_generation,
                      (unsigned long long)m->held_generation);
    }
    if (m->max_wait_ms > RBPROTO_MAX_WAIT_MS) {
        return reject("sync_request.max_wait_ms: %u", m->max_wait_ms);
    }
    return m->status ? rbproto_validate_agent_status(m->status) : 0;
}

/* "http://[ADDR]" or "http://[ADDR]:PORT", ADDR an IPv6 address and PORT
 * 1..65535 without leading zeros: the agent's base URL goes verbatim into
 * every URL a rendered file holds, so nothing else may pass. */
static int check_base_url(const char *what, const char *s)
{
    size_t n = s ? strnlen(s, RBPROTO_MAX_BASE_URL + 1) : 0;
    if (n == 0) {
        return reject("%s: missing", what);
    }
    if (n > RBPROTO_MAX_BASE_URL) {
        return reject("%s: longer than %u", what, RBPROTO_MAX_BASE_URL);
    }
    static const char scheme[] = "http://[";
    const char *close = strchr(s, ']');
    if (strncmp(s, scheme, strlen(scheme)) != 0 || !close) {
        return reject("%s: not http://[IPv6 address]", what);
    }
    char addr[INET6_ADDRSTRLEN];
    const char *open = s + strlen(scheme);
    struct in6_addr a;
    if ((size_t)(close - open) >= sizeof(addr)) {
        return reject("%s: not http://[IPv6 address]", what);
    }
    memcpy(addr, open, (size_t)(close - open));
    addr[close - open] = '\0';
    if (inet_pton(AF_INET6, addr, &a) != 1 || IN6_IS_ADDR_UNSPECIFIED(&a) ||
        IN6_IS_ADDR_V4MAPPED(&a)) {
        return reject("%s: not http://[IPv6 address]", what);
    }
    const char *port = close + 1;
    if (*port == '\0') {
        return 0;
    }
    unsigned long v = 0;
    size_t digits = 0;
    for (const char *p = port + 1; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 5) {
            return reject("%s: bad port", what);
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (*port != ':' || digits == 0 || port[1] == '0' || v > 65535) {
        return reject("%s: bad port", what);
    }
    return 0;
}

int rbproto_validate_render_context(const Rackboot__V1__RenderContext *m)
{
    if (!m) {
        return reject("render_context: missing");
    }
    TRY(check_base_url("render_context.base_url", m->base_url));
    TRY(check_count("render_context.dns_servers", m->n_dns_servers, 0, RBPROTO_MAX_DNS_SERVERS));
    for (size_t i = 0; i < m->n_dns_servers; i++) {
        TRY(check_addr("render_context.dns_servers", &m->dns_servers[i], REQUIRED));
    }
    TRY(check_count("render_context.search", m->n_search, 0, RBPROTO_MAX_SEARCH));
    for (size_t i = 0; i < m->n_search; i++) {
        TRY(check_text("render_context.search", m->search[i], TEXT_DNS_NAME, RBPROTO_MAX_DNS_NAME,
                       REQUIRED));
    }
    return check_addr("render_context.gateway", &m->gateway, OPTIONAL);
}

int rbproto_validate_agent_status(const Rackboot__V1__AgentStatus *m)
{
    if (!m) {
        return reject("agent_status: missing");
    }
    if (m->cache_bytes > RBPROTO_MAX_CACHE_BYTES ||
        m->cache_limit_bytes > RBPROTO_MAX_CACHE_BYTES) {
        return reject("agent_status: cache size above %llu bytes",
                      (unsigned long long)RBPROTO_MAX_CACHE_BYTES);
    }
    return m->render ? rbproto_validate_render_context(m->render) : 0;
}

int rbproto_validate_image(const Rackboot__V1__Image *m)
{
    if (!m) {
        return reject("image: missing");
    }
    TRY(check_text("image.name", m->name, TEXT_FILE_NAME, RBPROTO_MAX_FILE_NAME, REQUIRED));
    TRY(check_enum("image.kind", ENUM_DESC(image_kind), m->kind, REQUIRED));
    TRY(check_text("image.url", m->url, TEXT_URL, RBPROTO_MAX_URL, REQUIRED));
    return check_len("image.sha256", &m->sha256, RBPROTO_SHA256_LEN, REQUIRED);
}

int rbproto_validate_profile(const Rackboot__V1__Profile *m)
{
    unsigned kernels = 0, initrds = 0, stage2s = 0, disks = 0;

    if (!m) {
        return reject("profile: missing");
    }
    TRY(check_name("profile.name", m->name, REQUIRED));
    TRY(check_enum("profile.kind", ENUM_DESC(profile_kind), m->kind, OPTIONAL));
    bool image = m->kind == RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE;
    bool d_i = m->kind == RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_DEBIAN_INSTALLER;
    TRY(check_count("profile.images", m->n_images, image ? 1 : 2, RBPROTO_MAX_IMAGES));
    CHECK_EACH("profile.images", m->images, m->n_images, rbproto_validate_image);
    for (size_t i = 0; i < m->n_images; i++) {
        kernels += m->images[i]->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL;
        initrds += m->images[i]->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD;
        stage2s += m->images[i]->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2;
        disks += m->images[i]->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK;
        /* The agent serves images by name: two of one name is ambiguous. At
         * most 64 images, so quadratic is fine. */
        for (size_t j = 0; j < i; j++) {
            if (streq(m->images[i]->name, m->images[j]->name)) {
                return reject("profile %s: image %s twice", m->name, m->images[i]->name);
            }
        }
    }
    TRY(check_count("profile.ssh_authorized_keys", m->n_ssh_authorized_keys, 0,
                    image || d_i ? RBPROTO_MAX_SSH_KEYS : 0));
    for (size_t i = 0; i < m->n_ssh_authorized_keys; i++) {
        /* One authorized_keys line each: a newline in one would add a line
         * (a key, or options) the operator never wrote. */
        if (!model_ssh_key_valid(m->ssh_authorized_keys[i])) {
            return reject("profile %s: ssh_authorized_keys[%zu] is not one printable line", m->name,
                          i);
        }
    }
    if (image) {
        /* The deploy ramdisk boots in place of a kernel of the profile's and
         * writes exactly one disk image; cloud-init, not a kickstart,
         * configures the system. */
        if (disks != 1 || kernels > 0 || initrds > 0 || stage2s > 0) {
            return reject("profile %s: image profile with %u disk images, %u kernels, %u "
                          "initrds, %u stage2 images",
                          m->name, disks, kernels, initrds, stage2s);
        }
        if (!strempty(m->kickstart_template) || m->overlay) {
            return reject("profile %s: image profile with a kickstart or an overlay", m->name);
        }
        TRY(check_text("profile.user_data_template", m->user_data_template, TEXT_MULTILINE,
                       RBPROTO_MAX_TEMPLATE, OPTIONAL));
        if (model_user_data_is_mime(m->user_data_template)) {
            return reject("profile %s: user_data_template is a MIME document", m->name);
        }
    } else {
        /* The generated iPXE script boots exactly one kernel and one initrd
         * (the overlay is generated, not listed) and points inst.stage2 at
         * one image at most. */
        if (kernels != 1 || initrds != 1 || stage2s > 1 || disks > 0) {
            return reject("profile %s: %u kernels, %u initrds, %u stage2 images, %u disk images",
                          m->name, kernels, initrds, stage2s, disks);
        }
        if (!strempty(m->user_data_template)) {
            return reject("profile %s: user_data_template without kind image", m->name);
        }
        /* d-i: no stage2, no dracut overlay, netcfg's static address. */
        if (d_i &&
            (stage2s > 0 || m->overlay || m->ip_mode != RACKBOOT__V1__IP_MODE__IP_MODE_STATIC)) {
            return reject("profile %s: debian-installer profile with a stage2, an overlay or "
                          "without ip_mode static",
                          m->name);
        }
    }
    TRY(check_text("profile.kernel_args", m->kernel_args, TEXT_ARGS, RBPROTO_MAX_KERNEL_ARGS,
                   OPTIONAL));
    TRY(check_text("profile.kickstart_template", m->kickstart_template, TEXT_MULTILINE,
                   RBPROTO_MAX_TEMPLATE, OPTIONAL));
    /* `profiles list` leaves the template out but keeps its hash. */
    TRY(check_len("profile.kickstart_sha256", &m->kickstart_sha256, RBPROTO_SHA256_LEN,
                  !strempty(m->kickstart_template)));
    if (!strempty(m->root_device) && !model_root_device_valid(m->root_device)) {
        return reject("profile %s: root_device is not auto or a /dev/ path", m->name);
    }
    TRY(check_enum("profile.uefi_boot", ENUM_DESC(uefi_boot), m->uefi_boot, OPTIONAL));
    return check_enum("profile.ip_mode", ENUM_DESC(ip_mode), m->ip_mode, OPTIONAL);
}

int rbproto_validate_intent(const Rackboot__V1__Intent *m)
{
    if (!m) {
        return reject("intent: missing");
    }
    TRY(check_id("intent.install_id", m->install_id, REQUIRED));
    TRY(check_name("intent.host", m->host, REQUIRED));
    TRY(check_count("intent.macs", m->n_macs, 1, RBPROTO_MAX_MACS));
    for (size_t i = 0; i < m->n_macs; i++) {
        TRY(check_mac("intent.macs", &m->macs[i], REQUIRED));
    }
    TRY(check_duid("intent.duid", &m->duid));
    TRY(check_addr("intent.address", &m->address, REQUIRED));
    TRY(check_prefix_length("intent.prefix_length", m->prefix_length));
    TRY(check_addr("intent.gateway", &m->gateway, OPTIONAL));
    TRY(check_text("intent.hostname", m->hostname, TEXT_DNS_NAME, RBPROTO_MAX_DNS_NAME, REQUIRED));
    TRY(check_count("intent.dns_servers", m->n_dns_servers, 0, RBPROTO_MAX_DNS_SERVERS));
    for (size_t i = 0; i < m->n_dns_servers; i++) {
        TRY(check_addr("intent.dns_servers", &m->dns_servers[i], REQUIRED));
    }
    TRY(check_count("intent.search", m->n_search, 0, RBPROTO_MAX_SEARCH));
    for (size_t i = 0; i < m->n_search; i++) {
        TRY(check_text("intent.search", m->search[i], TEXT_DNS_NAME, RBPROTO_MAX_DNS_NAME,
                       REQUIRED));
    }
    TRY(check_name("intent.profile", m->profile, REQUIRED));
    TRY(check_id("intent.token", m->token, REQUIRED));
    if (strlen(m->token) < RBPROTO_MIN_TOKEN) {
        return reject("intent.token: shorter than %u", RBPROTO_MIN_TOKEN);
    }
    if (m->attempt < 1) {
        return reject("intent.attempt: 0");
    }
    return 0;
}

/* A BMC's URL (empty: none), user and password: what model/bmc.h takes.
 * The reason never quotes the password. */
static int check_bmc_fields(const char *what, const char *url, const char *user,
                            const char *password)
{
    char why[128];
    if (!strempty(url) && model_bmc_url_parse(url, NULL, why, sizeof(why)) < 0) {
        return reject("%s.bmc_url: %s", what, why);
    }
    if (user && !model_bmc_user_valid(user)) {
        return reject("%s.bmc_user: not printable ASCII of at most %u bytes", what,
                      MODEL_BMC_USER_MAX);
    }
    if (password && !model_bmc_password_valid(password)) {
        return reject("%s.bmc_password: not printable ASCII of at most %u bytes", what,
                      MODEL_BMC_PASSWORD_MAX);
    }
    if (strempty(url) && (!strempty(user) || !strempty(password))) {
        return reject("%s: BMC user or password without a BMC URL", what);
    }
    return 0;
}

int rbproto_validate_bmc(const Rackboot__V1__Bmc *m)
{
    if (!m) {
        return reject("bmc: missing");
    }
    TRY(check_name("bmc.host", m->host, REQUIRED));
    if (strempty(m->url)) {
        return reject("bmc %s: no url", m->host);
    }
    TRY(check_bmc_fields("bmc", m->url, m->user, m->password));
    return check_enum("bmc.firmware", ENUM_DESC(firmware), m->firmware, OPTIONAL);
}

int rbproto_validate_power_command(const Rackboot__V1__PowerCommand *m)
{
    if (!m) {
        return reject("power_command: missing");
    }
    TRY(check_id("power_command.id", m->id, REQUIRED));
    TRY(check_name("power_command.host", m->host, REQUIRED));
    TRY(check_enum("power_command.action", ENUM_DESC(power_action), m->action, REQUIRED));
    TRY(check_enum("power_command.boot_device", ENUM_DESC(boot_device), m->boot_device, OPTIONAL));
    return check_id("power_command.install_id", m->install_id, OPTIONAL);
}

int rbproto_validate_sync_response(const Rackboot__V1__SyncResponse *m)
{
    if (!m) {
        return reject("sync_response: missing");
    }
    TRY(check_name("sync.rack", m->rack, REQUIRED));
    /* "unchanged" with content would be read as "withdraw nothing" by one
     * agent version and "replace" by another: allow only one meaning. */
    if (m->unchanged &&
        (m->n_profiles > 0 || m->n_intents > 0 || m->n_bmcs > 0 || m->n_power > 0)) {
        return reject("sync: unchanged but carries %zu profiles, %zu intents, %zu bmcs, %zu power "
                      "commands",
                      m->n_profiles, m->n_intents, m->n_bmcs, m->n_power);
    }
    TRY(check_count("sync.bmcs", m->n_bmcs, 0, RBPROTO_MAX_INTENTS));
    TRY(check_count("sync.power", m->n_power, 0, RBPROTO_MAX_INTENTS));
    CHECK_EACH("sync.bmcs", m->bmcs, m->n_bmcs, rbproto_validate_bmc);
    CHECK_EACH("sync.power", m->power, m->n_power, rbproto_validate_power_command);
    TRY(check_count("sync.profiles", m->n_profiles, 0, RBPROTO_MAX_PROFILES));
    TRY(check_count("sync.intents", m->n_intents, 0, RBPROTO_MAX_INTENTS));
    CHECK_EACH("sync.profiles", m->profiles, m->n_profiles, rbproto_validate_profile);
    CHECK_EACH("sync.intents", m->intents, m->n_intents, rbproto_validate_intent);
    return sync_check_consistent(m);
}

int rbproto_validate_event(const Rackboot__V1__Event *m)
{
    if (!m) {
        return reject("event: missing");
    }
    if (m->seq == 0) {
        return reject("event.seq: 0");
    }
    TRY(check_enum("event.phase", ENUM_DESC(phase), m->phase, REQUIRED));
    /* Power events are of a host, and of an install only when one asked
     * for the power action. */
    bool power = rbproto_phase_is_power(m->phase);
    TRY(check_id("event.install_id", m->install_id, power ? OPTIONAL : REQUIRED));
    TRY(check_name("event.host", m->host, REQUIRED));
    TRY(check_id("event.power_id", m->power_id, OPTIONAL));
    if (!power && (!strempty(m->power_id) || m->power_state)) {
        return reject("event: power_id or power_state with phase %d", (int)m->phase);
    }
    TRY(check_enum("event.power_state", ENUM_DESC(power_state), m->power_state, OPTIONAL));
    bool learned = m->phase == RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED;
    TRY(check_mac("event.mac", &m->mac, learned));
    TRY(check_duid("event.duid", &m->duid));
    if (learned && m->duid.len == 0) {
        return reject("event: duid_learned without a duid");
    }
    TRY(check_percent("event.percent", m->percent));
    return check_line("event.message", m->message, RBPROTO_MAX_LINE);
}

int rbproto_validate_event_batch(const Rackboot__V1__EventBatch *m)
{
    if (!m) {
        return reject("event_batch: missing");
    }
    TRY(check_count("event_batch.events", m->n_events, 0, RBPROTO_MAX_EVENTS));
    TRY(check_id("event_batch.journal_id", m->journal_id, OPTIONAL));
    CHECK_EACH("event_batch.events", m->events, m->n_events, rbproto_validate_event);
    /* Journal order: lets the controller de-duplicate with one comparison. */
    for (size_t i = 1; i < m->n_events; i++) {
        if (m->events[i]->seq <= m->events[i - 1]->seq) {
            return reject("event_batch: seq %llu after %llu", (unsigned long long)m->events[i]->seq,
                          (unsigned long long)m->events[i - 1]->seq);
        }
    }
    return 0;
}

int rbproto_validate_error(const Rackboot__V1__Error *m)
{
    if (!m) {
        return reject("error: missing");
    }
    TRY(check_enum("error.code", ENUM_DESC(status), m->code, REQUIRED));
    if (m->code == RACKBOOT__V1__STATUS__STATUS_OK) {
        return reject("error.code: ok");
    }
    return check_line("error.message", m->message, RBPROTO_MAX_LINE);
}

int rbproto_validate_host(const Rackboot__V1__Host *m)
{
    if (!m) {
        return reject("host: missing");
    }
    TRY(check_name("host.name", m->name, REQUIRED));
    TRY(check_count("host.macs", m->n_macs, 1, RBPROTO_MAX_MACS));
    for (size_t i = 0; i < m->n_macs; i++) {
        TRY(check_mac("host.macs", &m->macs[i], REQUIRED));
    }
    TRY(check_name("host.rack", m->rack, REQUIRED));
    TRY(check_addr("host.address", &m->address, REQUIRED));
    TRY(check_prefix_length("host.prefix_length", m->prefix_length));
    TRY(check_addr("host.gateway", &m->gateway, OPTIONAL));
    TRY(check_text("host.hostname", m->hostname, TEXT_DNS_NAME, RBPROTO_MAX_DNS_NAME, OPTIONAL));
    TRY(check_duid("host.duid", &m->duid));
    TRY(check_bmc_fields("host", m->bmc_url, m->bmc_user, m->bmc_password));
    TRY(check_enum("host.firmware", ENUM_DESC(firmware), m->firmware, OPTIONAL));
    return check_enum("host.power_state", ENUM_DESC(power_state), m->power_state, OPTIONAL);
}

int rbproto_validate_selector(const Rackboot__V1__Selector *m)
{
    if (!m) {
        return reject("selector: missing");
    }
    /* Exactly one way to say which hosts: "all" must never be the accident
     * of an empty list. */
    int ways = (m->n_hosts > 0) + (m->n_racks > 0) + (m->all != 0);
    if (ways != 1) {
        return reject("selector: %d of hosts/racks/all set", ways);
    }
    TRY(check_names("selector.hosts", m->hosts, m->n_hosts, 0, RBPROTO_MAX_ROWS));
    return check_names("selector.racks", m->racks, m->n_racks, 0, RBPROTO_MAX_ROWS);
}

int rbproto_validate_agent_request(const Rackboot__V1__AgentRequest *m)
{
    if (!m) {
        return reject("agent_request: missing");
    }
    switch (m->body_case) {
    case RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_HELLO:
        return rbproto_validate_auth_hello(m->auth_hello);
    case RACKBOOT__V1__AGENT_REQUEST__BODY_AUTH_PROOF:
        return rbproto_validate_auth_proof(m->auth_proof);
    case RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC:
        return rbproto_validate_sync_request(m->sync);
    case RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS:
        return rbproto_validate_event_batch(m->events);
    default:
        return reject("agent_request: no body");
    }
}

int rbproto_validate_agent_reply(const Rackboot__V1__AgentReply *m)
{
    if (!m) {
        return reject("agent_reply: missing");
    }
    switch (m->body_case) {
    case RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_CHALLENGE:
        return rbproto_validate_auth_challenge(m->auth_challenge);
    case RACKBOOT__V1__AGENT_REPLY__BODY_AUTH_RESULT:
        return rbproto_validate_auth_result(m->auth_result);
    case RACKBOOT__V1__AGENT_REPLY__BODY_SYNC:
        return rbproto_validate_sync_response(m->sync);
    case RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK:
        return m->event_ack ? 0 : reject("event_ack: missing");
    case RACKBOOT__V1__AGENT_REPLY__BODY_ERROR:
        return rbproto_validate_error(m->error);
    default:
        return reject("agent_reply: no body");
    }
}

/* ---- API requests ------------------------------------------------------ */

static int validate_hosts_add(const Rackboot__V1__HostsAddRequest *m)
{
    if (!m) {
        return reject("hosts_add: missing");
    }
    TRY(check_count("hosts_add.hosts", m->n_hosts, 1, RBPROTO_MAX_ROWS));
    CHECK_EACH("hosts_add.hosts", m->hosts, m->n_hosts, rbproto_validate_host);
    return 0;
}

/* A page of a listing by host name: `after` is a host name (or empty),
 * `limit` bounded; neither goes with named hosts, which are answered each
 * (a page of them would be one the caller already holds). */
static int check_page(const char *what, uint32_t limit, const char *after, bool named)
{
    if (limit > RBPROTO_MAX_PAGE_ROWS) {
        return reject("%s.limit: %u", what, limit);
    }
    char field[32];
    snprintf(field, sizeof(field), "%s.after", what);
    TRY(check_name(field, after, OPTIONAL));
    if (named && (limit > 0 || !strempty(after))) {
        return reject("%s: a page of named hosts", what);
    }
    return 0;
}

static int validate_hosts_list(const Rackboot__V1__HostsListRequest *m)
{
    if (!m) {
        return reject("hosts_list: missing");
    }
    TRY(check_name("hosts_list.rack", m->rack, OPTIONAL));
    TRY(check_names("hosts_list.names", m->names, m->n_names, 0, RBPROTO_MAX_ROWS));
    return check_page("hosts_list", m->limit, m->after, m->n_names > 0);
}

static int validate_hosts_remove(const Rackboot__V1__HostsRemoveRequest *m)
{
    if (!m) {
        return reject("hosts_remove: missing");
    }
    return check_names("hosts_remove.names", m->names, m->n_names, 1, RBPROTO_MAX_ROWS);
}

static int validate_profiles_import(const Rackboot__V1__ProfilesImportRequest *m)
{
    if (!m) {
        return reject("profiles_import: missing");
    }
    TRY(check_count("profiles_import.profiles", m->n_profiles, 1, RBPROTO_MAX_PROFILES));
    CHECK_EACH("profiles_import.profiles", m->profiles, m->n_profiles, rbproto_validate_profile);
    return 0;
}

static int validate_profiles_list(const Rackboot__V1__ProfilesListRequest *m)
{
    if (!m) {
        return reject("profiles_list: missing");
    }
    return check_names("profiles_list.names", m->names, m->n_names, 0, RBPROTO_MAX_PROFILES);
}

static int validate_install(const Rackboot__V1__InstallRequest *m)
{
    if (!m) {
        return reject("install: missing");
    }
    TRY(rbproto_validate_selector(m->target));
    TRY(check_enum("install.power", ENUM_DESC(power_action), m->power, OPTIONAL));
    if (m->power && m->power != RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON &&
        m->power != RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE) {
        return reject("install.power: only on or cycle start an install");
    }
    return check_name("install.profile", m->profile, REQUIRED);
}

static int validate_power_request(const Rackboot__V1__PowerRequest *m)
{
    if (!m) {
        return reject("power: missing");
    }
    TRY(rbproto_validate_selector(m->target));
    TRY(check_enum("power.action", ENUM_DESC(power_action), m->action, REQUIRED));
    return check_enum("power.boot_device", ENUM_DESC(boot_device), m->boot_device, OPTIONAL);
}

static int validate_power_results(const Rackboot__V1__PowerResultsRequest *m)
{
    if (!m) {
        return reject("power_results: missing");
    }
    TRY(check_count("power_results.ids", m->n_ids, 1, RBPROTO_MAX_ROWS));
    for (size_t i = 0; i < m->n_ids; i++) {
        TRY(check_id("power_results.ids", m->ids[i], REQUIRED));
    }
    return 0;
}

static int validate_status_request(const Rackboot__V1__StatusRequest *m)
{
    if (!m) {
        return reject("status: missing");
    }
    TRY(rbproto_validate_selector(m->target));
    return check_page("status", m->limit, m->after, m->target->n_hosts > 0);
}

static int validate_events_request(const Rackboot__V1__EventsRequest *m)
{
    if (!m) {
        return reject("events: missing");
    }
    TRY(check_name("events.host", m->host, OPTIONAL));
    if (m->limit > RBPROTO_MAX_EVENT_ROWS) {
        return reject("events.limit: %u", m->limit);
    }
    if (m->max_wait_ms > RBPROTO_MAX_WAIT_MS) {
        return reject("events.max_wait_ms: %u", m->max_wait_ms);
    }
    return 0;
}

static int validate_audit_request(const Rackboot__V1__AuditRequest *m)
{
    if (!m) {
        return reject("audit: missing");
    }
    if (m->limit > RBPROTO_MAX_AUDIT_ROWS) {
        return reject("audit.limit: %u", m->limit);
    }
    return 0;
}

int rbproto_validate_api_request(const Rackboot__V1__ApiRequest *m)
{
    if (!m) {
        return reject("api_request: missing");
    }
    switch (m->body_case) {
    case RACKBOOT__V1__API_REQUEST__BODY_AUTH_HELLO:
        return rbproto_validate_auth_hello(m->auth_hello);
    case RACKBOOT__V1__API_REQUEST__BODY_AUTH_PROOF:
        return rbproto_validate_auth_proof(m->auth_proof);
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD:
        return validate_hosts_add(m->hosts_add);
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST:
        return validate_hosts_list(m->hosts_list);
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE:
        return validate_hosts_remove(m->hosts_remove);
    case RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST:
        return m->racks_list ? 0 : reject("racks_list: missing");
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT:
        return validate_profiles_import(m->profiles_import);
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_LIST:
        return validate_profiles_list(m->profiles_list);
    case RACKBOOT__V1__API_REQUEST__BODY_IMAGES_LIST:
        return m->images_list ? 0 : reject("images_list: missing");
    case RACKBOOT__V1__API_REQUEST__BODY_INSTALL:
        return validate_install(m->install);
    case RACKBOOT__V1__API_REQUEST__BODY_CANCEL:
        return m->cancel ? rbproto_validate_selector(m->cancel->target) : reject("cancel: missing");
    case RACKBOOT__V1__API_REQUEST__BODY_STATUS:
        return validate_status_request(m->status);
    case RACKBOOT__V1__API_REQUEST__BODY_EVENTS:
        return validate_events_request(m->events);
    case RACKBOOT__V1__API_REQUEST__BODY_AUDIT:
        return validate_audit_request(m->audit);
    case RACKBOOT__V1__API_REQUEST__BODY_POWER:
        return validate_power_request(m->power);
    case RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS:
        return validate_power_results(m->power_results);
    case RACKBOOT__V1__API_REQUEST__BODY_WEB_LOGIN:
        return m->web_login ? 0 : reject("web_login: missing");
    default:
        return reject("api_request: no body");
    }
}

/* ---- API replies ------------------------------------------------------- */

static int validate_rack_row(const Rackboot__V1__RackRow *m)
{
    if (!m) {
        return reject("rack_row: missing");
    }
    TRY(check_name("rack_row.rack", m->rack, REQUIRED));
    TRY(check_agent_name("rack_row.agent", m->agent, OPTIONAL));
    TRY(check_line("rack_row.agent_version", m->agent_version, RBPROTO_MAX_VERSION));
    if (m->acked_generation > m->generation) {
        return reject("rack_row: acked generation above generation");
    }
    if (m->cache_bytes > RBPROTO_MAX_CACHE_BYTES ||
        m->cache_limit_bytes > RBPROTO_MAX_CACHE_BYTES) {
        return reject("rack_row: cache size above %llu bytes",
                      (unsigned long long)RBPROTO_MAX_CACHE_BYTES);
    }
    if (m->n_agents > RBPROTO_MAX_AGENT_INSTANCE) {
        return reject("rack_row: more than %u agents", RBPROTO_MAX_AGENT_INSTANCE);
    }
    for (size_t i = 0; i < m->n_agents; i++) {
        const Rackboot__V1__AgentRow *a = m->agents[i];
        if (!a || a->instance < 1 || a->instance > RBPROTO_MAX_AGENT_INSTANCE) {
            return reject("rack_row.agents[%zu]: missing or bad instance", i);
        }
        TRY(check_agent_name("rack_row.agents.agent", a->agent, OPTIONAL));
        TRY(check_line("rack_row.agents.agent_version", a->agent_version, RBPROTO_MAX_VERSION));
        if (a->acked_generation > m->generation) {
            return reject("rack_row.agents[%zu]: acked generation above generation", i);
        }
        if (a->cache_bytes > RBPROTO_MAX_CACHE_BYTES ||
            a->cache_limit_bytes > RBPROTO_MAX_CACHE_BYTES) {
            return reject("rack_row.agents[%zu]: cache size above %llu bytes", i,
                          (unsigned long long)RBPROTO_MAX_CACHE_BYTES);
        }
    }
    return 0;
}

static int validate_image_row(const Rackboot__V1__ImageRow *m)
{
    if (!m) {
        return reject("image_row: missing");
    }
    TRY(check_name("image_row.profile", m->profile, REQUIRED));
    return rbproto_validate_image(m->image);
}

static int validate_status_row(const Rackboot__V1__StatusRow *m)
{
    if (!m) {
        return reject("status_row: missing");
    }
    TRY(check_name("status_row.host", m->host, REQUIRED));
    TRY(check_name("status_row.rack", m->rack, OPTIONAL));
    TRY(check_enum("status_row.state", ENUM_DESC(install_state), m->state, REQUIRED));
    bool none = m->state == RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE;
    TRY(check_id("status_row.install_id", m->install_id, !none));
    TRY(check_name("status_row.profile", m->profile, OPTIONAL));
    TRY(check_enum("status_row.phase", ENUM_DESC(phase), m->phase, OPTIONAL));
    TRY(check_percent("status_row.percent", m->percent));
    TRY(check_enum("status_row.skipped", ENUM_DESC(skip), m->skipped, OPTIONAL));
    return check_line("status_row.message", m->message, RBPROTO_MAX_LINE);
}

static int validate_event_row(const Rackboot__V1__EventRow *m)
{
    if (!m) {
        return reject("event_row: missing");
    }
    if (m->seq == 0) {
        return reject("event_row.seq: 0");
    }
    TRY(check_name("event_row.host", m->host, REQUIRED));
    TRY(check_enum("event_row.phase", ENUM_DESC(phase), m->phase, REQUIRED));
    /* A power event is of a host, of an install only when one asked for it. */
    TRY(check_id("event_row.install_id", m->install_id,
                 rbproto_phase_is_power(m->phase) ? OPTIONAL : REQUIRED));
    TRY(check_percent("event_row.percent", m->percent));
    return check_line("event_row.message", m->message, RBPROTO_MAX_LINE);
}

/* who: "<role>:<name>" from a certificate or "local:uid=N"; verb: a few
 * lower-case words. */
static int validate_audit_row(const Rackboot__V1__AuditRow *m)
{
    if (!m) {
        return reject("audit_row: missing");
    }
    if (m->seq == 0) {
        return reject("audit_row.seq: 0");
    }
    TRY(check_text("audit_row.who", m->who, TEXT_LINE, RBPROTO_MAX_NAME + 32, REQUIRED));
    TRY(check_text("audit_row.verb", m->verb, TEXT_LINE, RBPROTO_MAX_NAME, REQUIRED));
    TRY(check_names("audit_row.hosts", m->hosts, m->n_hosts, 0, RBPROTO_MAX_AUDIT_NAMES));
    if (m->host_count < m->n_hosts) {
        return reject("audit_row.host_count: %u below %zu hosts", m->host_count, m->n_hosts);
    }
    TRY(check_names("audit_row.profiles", m->profiles, m->n_profiles, 0, RBPROTO_MAX_AUDIT_NAMES));
    return check_line("audit_row.result", m->result, RBPROTO_MAX_LINE);
}

static int validate_power_row(const Rackboot__V1__PowerRow *m)
{
    if (!m) {
        return reject("power_row: missing");
    }
    /* A host that could not be given a command is a row without one. */
    TRY(check_id("power_row.id", m->id, m->done ? OPTIONAL : REQUIRED));
    TRY(check_name("power_row.host", m->host, REQUIRED));
    TRY(check_enum("power_row.action", ENUM_DESC(power_action), m->action, REQUIRED));
    TRY(check_enum("power_row.power_state", ENUM_DESC(power_state), m->power_state, OPTIONAL));
    return check_line("power_row.message", m->message, RBPROTO_MAX_LINE);
}

static int validate_api_reply_body(const Rackboot__V1__ApiReply *m)
{
    switch (m->body_case) {
    case RACKBOOT__V1__API_REPLY__BODY__NOT_SET:
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_AUTH_CHALLENGE:
        return rbproto_validate_auth_challenge(m->auth_challenge);
    case RACKBOOT__V1__API_REPLY__BODY_AUTH_RESULT:
        return rbproto_validate_auth_result(m->auth_result);
    case RACKBOOT__V1__API_REPLY__BODY_HOSTS:
        if (!m->hosts) {
            return reject("hosts: missing");
        }
        TRY(check_count("hosts", m->hosts->n_hosts, 0, RBPROTO_MAX_ROWS));
        CHECK_EACH("hosts", m->hosts->hosts, m->hosts->n_hosts, rbproto_validate_host);
        /* The next page starts after the last row: without one, a reader
         * would ask for the same page for ever. */
        if (m->hosts->more && m->hosts->n_hosts == 0) {
            return reject("hosts: more without rows");
        }
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_RACKS:
        if (!m->racks) {
            return reject("racks: missing");
        }
        TRY(check_count("racks", m->racks->n_racks, 0, RBPROTO_MAX_ROWS));
        CHECK_EACH("racks", m->racks->racks, m->racks->n_racks, validate_rack_row);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_PROFILES:
        if (!m->profiles) {
            return reject("profiles: missing");
        }
        TRY(check_count("profiles", m->profiles->n_profiles, 0, RBPROTO_MAX_PROFILES));
        CHECK_EACH("profiles", m->profiles->profiles, m->profiles->n_profiles,
                   rbproto_validate_profile);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_IMAGES:
        if (!m->images) {
            return reject("images: missing");
        }
        TRY(check_count("images", m->images->n_images, 0, RBPROTO_MAX_ROWS));
        CHECK_EACH("images", m->images->images, m->images->n_images, validate_image_row);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_STATUSES:
        if (!m->statuses) {
            return reject("statuses: missing");
        }
        TRY(check_count("statuses", m->statuses->n_rows, 0, RBPROTO_MAX_ROWS));
        CHECK_EACH("statuses", m->statuses->rows, m->statuses->n_rows, validate_status_row);
        if (m->statuses->more && m->statuses->n_rows == 0) {
            return reject("statuses: more without rows");
        }
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_EVENTS:
        if (!m->events) {
            return reject("events: missing");
        }
        TRY(check_count("events", m->events->n_events, 0, RBPROTO_MAX_EVENT_ROWS));
        CHECK_EACH("events", m->events->events, m->events->n_events, validate_event_row);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_AUDIT:
        if (!m->audit) {
            return reject("audit: missing");
        }
        TRY(check_count("audit", m->audit->n_rows, 0, RBPROTO_MAX_AUDIT_ROWS));
        CHECK_EACH("audit", m->audit->rows, m->audit->n_rows, validate_audit_row);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_POWER:
        if (!m->power) {
            return reject("power: missing");
        }
        TRY(check_count("power", m->power->n_rows, 0, RBPROTO_MAX_ROWS));
        CHECK_EACH("power", m->power->rows, m->power->n_rows, validate_power_row);
        return 0;
    case RACKBOOT__V1__API_REPLY__BODY_WEB_LOGIN:
        if (!m->web_login) {
            return reject("web_login: missing");
        }
        /* Only https: the URL carries a secret, and the CLI prints it for
         * a browser to open. */
        TRY(check_text("web_login.url", m->web_login->url, TEXT_URL, RBPROTO_MAX_URL, REQUIRED));
        if (strncmp(m->web_login->url, "https://", 8) != 0) {
            return reject("web_login.url: not https");
        }
        return 0;
    default:
        return reject("api_reply: unknown body %d", (int)m->body_case);
    }
}

int rbproto_validate_api_reply(const Rackboot__V1__ApiReply *m)
{
    if (!m) {
        return reject("api_reply: missing");
    }
    TRY(check_enum("api_reply.status", ENUM_DESC(status), m->status, REQUIRED));
    TRY(check_line("api_reply.message", m->message, RBPROTO_MAX_LINE));
    /* A failed request returns no partial result for the CLI to misread,
     * except install and cancel: with FAILED their rows say, per host, what
     * happened (each row's message), so the operator sees which ones. */
    bool per_host = m->status == RACKBOOT__V1__STATUS__STATUS_FAILED &&
                    m->body_case == RACKBOOT__V1__API_REPLY__BODY_STATUSES;
    if (m->status != RACKBOOT__V1__STATUS__STATUS_OK && !per_host &&
        m->body_case != RACKBOOT__V1__API_REPLY__BODY__NOT_SET) {
        return reject("api_reply: body with status %d", (int)m->status);
    }
    return validate_api_reply_body(m);
}

/* ---- Validation by type, and packing ----------------------------------- */

#define GENERIC(fn, type)                                                                          \
    static int fn##_generic(const ProtobufCMessage *m)                                             \
    {                                                                                              \
        return rbproto_validate_##fn((const type *)m);                                             \
    }

GENERIC(auth_hello, Rackboot__V1__AuthHello)
GENERIC(auth_challenge, Rackboot__V1__AuthChallenge)
GENERIC(auth_proof, Rackboot__V1__AuthProof)
GENERIC(auth_result, Rackboot__V1__AuthResult)
GENERIC(sync_request, Rackboot__V1__SyncRequest)
GENERIC(sync_response, Rackboot__V1__SyncResponse)
GENERIC(intent, Rackboot__V1__Intent)
GENERIC(profile, Rackboot__V1__Profile)
GENERIC(image, Rackboot__V1__Image)
GENERIC(event, Rackboot__V1__Event)
GENERIC(event_batch, Rackboot__V1__EventBatch)
GENERIC(error, Rackboot__V1__Error)
GENERIC(host, Rackboot__V1__Host)
GENERIC(selector, Rackboot__V1__Selector)

static const struct {
    const ProtobufCMessageDescriptor *desc;
    validate_fn validate;
} validators[] = {
    { &rackboot__v1__auth_hello__descriptor, auth_hello_generic },
    { &rackboot__v1__auth_challenge__descriptor, auth_challenge_generic },
    { &rackboot__v1__auth_proof__descriptor, auth_proof_generic },
    { &rackboot__v1__auth_result__descriptor, auth_result_generic },
    { &rackboot__v1__sync_request__descriptor, sync_request_generic },
    { &rackboot__v1__sync_response__descriptor, sync_response_generic },
    { &rackboot__v1__intent__descriptor, intent_generic },
    { &rackboot__v1__profile__descriptor, profile_generic },
    { &rackboot__v1__image__descriptor, image_generic },
    { &rackboot__v1__event__descriptor, event_generic },
    { &rackboot__v1__event_batch__descriptor, event_batch_generic },
    { &rackboot__v1__error__descriptor, error_generic },
    { &rackboot__v1__host__descriptor, host_generic },
    { &rackboot__v1__selector__descriptor, selector_generic },
    { &rackboot__v1__agent_request__descriptor, agent_request_generic },
    { &rackboot__v1__agent_reply__descriptor, agent_reply_generic },
    { &rackboot__v1__api_request__descriptor, api_request_generic },
    { &rackboot__v1__api_reply__descriptor, api_reply_generic },
};

int rbproto_validate(const ProtobufCMessage *m)
{
    if (!m) {
        return reject("missing message");
    }
    for (size_t i = 0; i < ARRAY_SIZE(validators); i++) {
        if (validators[i].desc == m->descriptor) {
            return validators[i].validate(m);
        }
    }
    return -EOPNOTSUPP;
}

int rbproto_packed_size(const ProtobufCMessage *msg, size_t max, size_t *ret)
{
    RB_ASSERT(msg && ret);

    /* Never send what the peer must refuse: the bug is ours, say so here. */
    int r = rbproto_validate(msg);
    if (r == -EBADMSG) {
        return -EINVAL;
    }
    if (r < 0 && r != -EOPNOTSUPP) {
        return r;
    }
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > max) {
        return -E2BIG;
    }
    *ret = size;
    return 0;
}

int rbproto_pack_into(const ProtobufCMessage *msg, uint8_t *buf, size_t cap, size_t *ret_len)
{
    size_t size;
    int r = rbproto_packed_size(msg, cap, &size);

    if (r == -E2BIG) {
        return -ENOSPC;
    }
    if (r < 0) {
        return r;
    }
    size_t n = protobuf_c_message_pack(msg, buf);
    RB_ASSERT(n == size);
    *ret_len = n;
    return 0;
}

int rbproto_pack(const ProtobufCMessage *msg, size_t max, uint8_t **ret, size_t *ret_len)
{
    size_t size;
    int r = rbproto_packed_size(msg, max, &size);

    if (r < 0) {
        return r;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        return -ENOMEM;
    }
    size_t n = protobuf_c_message_pack(msg, buf);
    RB_ASSERT(n == size);
    *ret = buf;
    *ret_len = n;
    return 0;
}

/* ---- Enum names -------------------------------------------------------- */

typedef struct enum_name {
    int value;
    const char *name;
} enum_name;

static const enum_name phase_names[] = {
    { RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND, "dhcp_bound" },
    { RACKBOOT__V1__PHASE__PHASE_SCRIPT_SERVED, "script_served" },
    { RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED, "kernel_fetched" },
    { RACKBOOT__V1__PHASE__PHASE_INITRD_FETCHED, "initrd_fetched" },
    { RACKBOOT__V1__PHASE__PHASE_OVERLAY_FETCHED, "overlay_fetched" },
    { RACKBOOT__V1__PHASE__PHASE_KICKSTART_FETCHED, "kickstart_fetched" },
    { RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS, "stage2_progress" },
    { RACKBOOT__V1__PHASE__PHASE_INSTALLING, "installing" },
    { RACKBOOT__V1__PHASE__PHASE_INSTALLED, "installed" },
    { RACKBOOT__V1__PHASE__PHASE_FAILED, "failed" },
    { RACKBOOT__V1__PHASE__PHASE_DUID_LEARNED, "duid_learned" },
    { RACKBOOT__V1__PHASE__PHASE_IMAGES_CACHED, "images_cached" },
    { RACKBOOT__V1__PHASE__PHASE_IMAGES_FAILED, "images_failed" },
    { RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET, "bootdev_set" },
    { RACKBOOT__V1__PHASE__PHASE_POWER_ON, "power_on" },
    { RACKBOOT__V1__PHASE__PHASE_POWER_OFF, "power_off" },
    { RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE, "power_cycle" },
    { RACKBOOT__V1__PHASE__PHASE_POWER_STATUS, "power_status" },
    { RACKBOOT__V1__PHASE__PHASE_POWER_FAILED, "power_failed" },
    { RACKBOOT__V1__PHASE__PHASE_WRITING, "writing" },
    { RACKBOOT__V1__PHASE__PHASE_WRITTEN, "written" },
    { RACKBOOT__V1__PHASE__PHASE_FIRST_BOOT, "first_boot" },
};

static const enum_name power_action_names[] = {
    { RACKBOOT__V1__POWER_ACTION__POWER_ACTION_STATUS, "status" },
    { RACKBOOT__V1__POWER_ACTION__POWER_ACTION_ON, "on" },
    { RACKBOOT__V1__POWER_ACTION__POWER_ACTION_OFF, "off" },
    { RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE, "cycle" },
    { RACKBOOT__V1__POWER_ACTION__POWER_ACTION_SOFT, "soft" },
};

static const enum_name power_state_names[] = {
    { RACKBOOT__V1__POWER_STATE__POWER_STATE_ON, "on" },
    { RACKBOOT__V1__POWER_STATE__POWER_STATE_OFF, "off" },
};

static const enum_name boot_device_names[] = {
    { RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_PXE, "pxe" },
    { RACKBOOT__V1__BOOT_DEVICE__BOOT_DEVICE_DISK, "disk" },
};

static const enum_name firmware_names[] = {
    { RACKBOOT__V1__FIRMWARE__FIRMWARE_BIOS, "bios" },
    { RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI, "uefi" },
};

static const enum_name install_state_names[] = {
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE, "none" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_REQUESTED, "requested" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_DISPATCHED, "dispatched" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_BOOTING, "booting" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLING, "installing" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLED, "installed" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_FAILED, "failed" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_CANCELLED, "cancelled" },
    { RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_TIMED_OUT, "timed_out" },
};

static const enum_name image_kind_names[] = {
    { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL, "kernel" },
    { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD, "initrd" },
    { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2, "stage2" },
    { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER, "other" },
    { RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK, "disk" },
};

static const enum_name role_names[] = {
    { RACKBOOT__V1__ROLE__ROLE_CONTROLLER, "controller" },
    { RACKBOOT__V1__ROLE__ROLE_AGENT, "agent" },
    { RACKBOOT__V1__ROLE__ROLE_OPERATOR, "operator" },
    { RACKBOOT__V1__ROLE__ROLE_VIEWER, "viewer" },
};

static const enum_name status_names[] = {
    { RACKBOOT__V1__STATUS__STATUS_OK, "ok" },
    { RACKBOOT__V1__STATUS__STATUS_INVALID, "invalid" },
    { RACKBOOT__V1__STATUS__STATUS_NOT_FOUND, "not_found" },
    { RACKBOOT__V1__STATUS__STATUS_CONFLICT, "conflict" },
    { RACKBOOT__V1__STATUS__STATUS_FAILED, "failed" },
    { RACKBOOT__V1__STATUS__STATUS_UNAUTHORIZED, "unauthorized" },
    { RACKBOOT__V1__STATUS__STATUS_PERMISSION_DENIED, "permission_denied" },
    { RACKBOOT__V1__STATUS__STATUS_UNAVAILABLE, "unavailable" },
};

static const enum_name skip_names[] = {
    { RACKBOOT__V1__SKIP__SKIP_NONE, "none" },
    { RACKBOOT__V1__SKIP__SKIP_ACTIVE, "active" },
    { RACKBOOT__V1__SKIP__SKIP_NOT_ACTIVE, "not_active" },
    { RACKBOOT__V1__SKIP__SKIP_NOT_FOUND, "not_found" },
    { RACKBOOT__V1__SKIP__SKIP_NO_BMC, "no_bmc" },
};

static const enum_name ip_mode_names[] = {
    { RACKBOOT__V1__IP_MODE__IP_MODE_STATIC, "static" },
    { RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6, "dhcp6" },
};

static const enum_name uefi_boot_names[] = {
    { RACKBOOT__V1__UEFI_BOOT__UEFI_BOOT_IPXE, "ipxe" },
    { RACKBOOT__V1__UEFI_BOOT__UEFI_BOOT_UKI, "uki" },
};

static const char *enum_to_string(const enum_name *t, size_t n, int v)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].value == v) {
            return t[i].name;
        }
    }
    return NULL;
}

static int enum_from_string(const enum_name *t, size_t n, const char *s, int *ret)
{
    if (!s) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (streq(t[i].name, s)) {
            *ret = t[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

#define ENUM_STRINGS(fn, type, table)                                                              \
    const char *rbproto_##fn##_to_string(type v)                                                   \
    {                                                                                              \
        return enum_to_string(table, ARRAY_SIZE(table), (int)v);                                   \
    }                                                                                              \
    int rbproto_##fn##_from_string(const char *s, type *ret)                                       \
    {                                                                                              \
        int v;                                                                                     \
        int r = enum_from_string(table, ARRAY_SIZE(table), s, &v);                                 \
        if (r < 0) {                                                                               \
            return r;                                                                              \
        }                                                                                          \
        *ret = (type)v;                                                                            \
        return 0;                                                                                  \
    }

ENUM_STRINGS(phase, Rackboot__V1__Phase, phase_names)
ENUM_STRINGS(install_state, Rackboot__V1__InstallState, install_state_names)
ENUM_STRINGS(image_kind, Rackboot__V1__ImageKind, image_kind_names)
ENUM_STRINGS(role, Rackboot__V1__Role, role_names)
ENUM_STRINGS(status, Rackboot__V1__Status, status_names)
ENUM_STRINGS(skip, Rackboot__V1__Skip, skip_names)
ENUM_STRINGS(ip_mode, Rackboot__V1__IpMode, ip_mode_names)
ENUM_STRINGS(uefi_boot, Rackboot__V1__UefiBoot, uefi_boot_names)
ENUM_STRINGS(power_action, Rackboot__V1__PowerAction, power_action_names)
ENUM_STRINGS(power_state, Rackboot__V1__PowerState, power_state_names)
ENUM_STRINGS(boot_device, Rackboot__V1__BootDevice, boot_device_names)
ENUM_STRINGS(firmware, Rackboot__V1__Firmware, firmware_names)

bool rbproto_phase_is_power(Rackboot__V1__Phase p)
{
    switch (p) {
    case RACKBOOT__V1__PHASE__PHASE_BOOTDEV_SET:
    case RACKBOOT__V1__PHASE__PHASE_POWER_ON:
    case RACKBOOT__V1__PHASE__PHASE_POWER_OFF:
    case RACKBOOT__V1__PHASE__PHASE_POWER_CYCLE:
    case RACKBOOT__V1__PHASE__PHASE_POWER_STATUS:
    case RACKBOOT__V1__PHASE__PHASE_POWER_FAILED:
        return true;
    default:
        return false;
    }
}
