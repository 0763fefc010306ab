#include "tftp/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cursor.h"
#include "util.h"

/* Case-insensitive compare of a packet slice with a lower-case literal. */
static bool slice_eq(const uint8_t *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (uint8_t)(c - 'A' + 'a');
        }
        if (c != (uint8_t)lit[i]) {
            return false;
        }
    }
    return true;
}

/* Decimal digits only, at most 20 of them, value <= max. */
static int slice_u64(const uint8_t *p, size_t n, uint64_t max, uint64_t *ret)
{
    if (n == 0 || n > 20) {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -EINVAL;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (max - d) / 10) {
            return -ERANGE;
        }
        v = v * 10 + d;
    }
    *ret = v;
    return 0;
}

static tftp_mode mode_of(const uint8_t *p, size_t n)
{
    if (slice_eq(p, n, "octet")) {
        return TFTP_MODE_OCTET;
    }
    if (slice_eq(p, n, "netascii")) {
        return TFTP_MODE_NETASCII;
    }
    if (slice_eq(p, n, "mail")) {
        return TFTP_MODE_MAIL;
    }
    return TFTP_MODE_UNKNOWN;
}

const char *tftp_mode_to_string(tftp_mode m)
{
    switch (m) {
    case TFTP_MODE_OCTET:
        return "octet";
    case TFTP_MODE_NETASCII:
        return "netascii";
    case TFTP_MODE_MAIL:
        return "mail";
    default:
        return "unknown";
    }
}

/* One option: known ones are checked against their RFC ranges. */
static void take_option(tftp_request *r, const uint8_t *name, size_t name_len, const uint8_t *val,
                        size_t val_len)
{
    uint64_t v;
    if (slice_eq(name, name_len, "blksize")) {
        if (r->has_blksize) {
            return;
        }
        /* RFC 2348: 8..65464. A larger request is clamped by negotiation,
         * not refused: the server may always answer smaller. */
        int k = slice_u64(val, val_len, UINT64_MAX, &v);
        if (k < 0 || v < TFTP_MIN_BLKSIZE) {
            r->n_rejected++;
            return;
        }
        r->blksize = v > TFTP_MAX_BLKSIZE ? TFTP_MAX_BLKSIZE : (uint32_t)v;
        r->has_blksize = true;
    } else if (slice_eq(name, name_len, "timeout")) {
        if (r->has_timeout) {
            return;
        }
        /* RFC 2349: 1..255; the server echoes it or leaves it out. */
        if (slice_u64(val, val_len, TFTP_MAX_TIMEOUT, &v) < 0 || v < TFTP_MIN_TIMEOUT) {
            r->n_rejected++;
            return;
        }
        r->timeout = (uint32_t)v;
        r->has_timeout = true;
    } else if (slice_eq(name, name_len, "tsize")) {
        if (r->has_tsize) {
            return;
        }
        if (slice_u64(val, val_len, UINT64_MAX, &v) < 0) {
            r->n_rejected++;
            return;
        }
        r->tsize = v;
        r->has_tsize = true;
    } else if (slice_eq(name, name_len, "windowsize")) {
        if (r->has_windowsize) {
            return;
        }
        /* RFC 7440: 1..65535. */
        if (slice_u64(val, val_len, TFTP_MAX_WINDOWSIZE, &v) < 0 || v < 1) {
            r->n_rejected++;
            return;
        }
        r->windowsize = (uint32_t)v;
        r->has_windowsize = true;
    } else {
        /* RFC 2347: unrecognised options are ignored. */
        r->n_unknown++;
    }
}

int tftp_request_parse(const uint8_t *buf, size_t len, tftp_request *ret)
{
    if (len > TFTP_MAX_REQUEST) {
        return -EBADMSG;
    }
    cursor c = cursor_make(buf, len);
    uint16_t op;
    if (cursor_read_be16(&c, &op) < 0 || (op != TFTP_RRQ && op != TFTP_WRQ)) {
        return -EBADMSG;
    }
    const uint8_t *name, *mode;
    size_t name_len, mode_len;
    if (cursor_read_until(&c, 0, &name, &name_len) < 0 || name_len == 0 ||
        cursor_read_until(&c, 0, &mode, &mode_len) < 0 || mode_len == 0) {
        return -EBADMSG;
    }
    tftp_request r = { .opcode = op, .mode = mode_of(mode, mode_len) };
    /* name_len < len <= 512 = TFTP_MAX_FILENAME: it fits. */
    memcpy(r.filename, name, name_len);
    r.filename[name_len] = '\0';
    r.filename_len = name_len;
    while (!cursor_at_end(&c)) {
        const uint8_t *on, *ov;
        size_t on_len, ov_len;
        uint8_t first;
        if (cursor_peek_u8(&c, &first) == 0 && first == 0) {
            /* Some ROMs pad the request with NULs: allowed only as a tail
             * of nothing but NULs. */
            const uint8_t *rest = cursor_pos(&c);
            for (size_t i = 0; i < cursor_remaining(&c); i++) {
                if (rest[i] != 0) {
                    return -EBADMSG;
                }
            }
            break;
        }
        if (cursor_read_until(&c, 0, &on, &on_len) < 0 ||
            cursor_read_until(&c, 0, &ov, &ov_len) < 0) {
            return -EBADMSG;
        }
        take_option(&r, on, on_len, ov, ov_len);
    }
    memcpy(ret, &r, sizeof(r));
    return 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

void tftp_negotiate(const tftp_request *req, const tftp_limits *lim, uint64_t file_size,
                    tftp_params *ret)
{
    tftp_params p = { .blksize = TFTP_DEFAULT_BLKSIZE, .windowsize = 1 };
    if (req->has_blksize) {
        uint32_t cap = lim->max_blksize;
        if (lim->path_blksize >= TFTP_MIN_BLKSIZE) {
            cap = min_u32(cap, lim->path_blksize);
        }
        if (cap < TFTP_MIN_BLKSIZE) {
            cap = TFTP_MIN_BLKSIZE;
        }
        p.blksize = min_u32(req->blksize, cap);
        p.oack_blksize = true;
    }
    if (req->has_windowsize) {
        uint32_t cap = lim->max_windowsize ? lim->max_windowsize : 1;
        p.windowsize = min_u32(req->windowsize, cap);
        p.oack_windowsize = true;
    }
    if (req->has_timeout) {
        p.timeout = req->timeout;
        p.oack_timeout = true;
    }
    if (req->has_tsize) {
        p.tsize = file_size;
        p.oack_tsize = true;
    }
    *ret = p;
}

bool tftp_params_has_oack(const tftp_params *p)
{
    return p->oack_blksize || p->oack_timeout || p->oack_tsize || p->oack_windowsize;
}

static int put_str(wcursor *w, const char *s)
{
    return wcursor_put_bytes(w, s, strlen(s) + 1);
}

static int put_opt(wcursor *w, const char *name, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    int r = put_str(w, name);
    return r < 0 ? r : put_str(w, num);
}

int tftp_build_oack(const tftp_params *p, uint8_t *buf, size_t cap)
{
    wcursor w = wcursor_make(buf, cap);
    int r = wcursor_put_be16(&w, TFTP_OACK);
    /* Same order as clients send them; only accepted options. */
    if (r == 0 && p->oack_blksize) {
        r = put_opt(&w, "blksize", p->blksize);
    }
    if (r == 0 && p->oack_timeout) {
        r = put_opt(&w, "timeout", p->timeout);
    }
    if (r == 0 && p->oack_tsize) {
        r = put_opt(&w, "tsize", p->tsize);
    }
    if (r == 0 && p->oack_windowsize) {
        r = put_opt(&w, "windowsize", p->windowsize);
    }
    return r < 0 ? r : (int)wcursor_len(&w);
}

int tftp_build_error(uint16_t code, const char *msg, uint8_t *buf, size_t cap)
{
    wcursor w = wcursor_make(buf, cap);
    size_t n = strnlen(msg, 511);
    int r = wcursor_put_be16(&w, TFTP_ERROR);
    if (r == 0) {
        r = wcursor_put_be16(&w, code);
    }
    if (r == 0) {
        r = wcursor_put_bytes(&w, msg, n);
    }
    if (r == 0) {
        r = wcursor_put_u8(&w, 0);
    }
    return r < 0 ? r : (int)wcursor_len(&w);
}

static int build_2x16(uint16_t op, uint16_t v, uint8_t *buf, size_t cap)
{
    wcursor w = wcursor_make(buf, cap);
    int r = wcursor_put_be16(&w, op);
    if (r == 0) {
        r = wcursor_put_be16(&w, v);
    }
    return r < 0 ? r : (int)wcursor_len(&w);
}

int tftp_build_ack(uint16_t block, uint8_t *buf, size_t cap)
{
    return build_2x16(TFTP_ACK, block, buf, cap);
}

int tftp_build_data_header(uint16_t block, uint8_t *buf, size_t cap)
{
    return build_2x16(TFTP_DATA, block, buf, cap);
}

int tftp_build_request(uint16_t opcode, const char *filename, const char *mode,
                       const char *const *options, size_t n_options, uint8_t *buf, size_t cap)
{
    wcursor w = wcursor_make(buf, cap);
    int r = wcursor_put_be16(&w, opcode);
    if (r == 0) {
        r = put_str(&w, filename);
    }
    if (r == 0) {
        r = put_str(&w, mode);
    }
    for (size_t i = 0; r == 0 && i < 2 * n_options; i++) {
        r = put_str(&w, options[i]);
    }
    return r < 0 ? r : (int)wcursor_len(&w);
}

int tftp_packet_parse(const uint8_t *buf, size_t len, tftp_packet *ret)
{
    cursor c = cursor_make(buf, len);
    uint16_t op, v;
    if (cursor_read_be16(&c, &op) < 0) {
        return -EBADMSG;
    }
    switch (op) {
    case TFTP_RRQ:
    case TFTP_WRQ:
    case TFTP_OACK:
        ret->opcode = op;
        ret->block = 0;
        ret->error_code = 0;
        ret->error_msg = NULL;
        return 0;
    case TFTP_DATA:
    case TFTP_ACK:
        if (cursor_read_be16(&c, &v) < 0) {
            return -EBADMSG;
        }
        ret->opcode = op;
        ret->block = v;
        ret->error_code = 0;
        ret->error_msg = NULL;
        return 0;
    case TFTP_ERROR: {
        if (cursor_read_be16(&c, &v) < 0) {
            return -EBADMSG;
        }
        size_t n = cursor_remaining(&c);
        const uint8_t *p = cursor_pos(&c);
        const uint8_t *nul = memchr(p, 0, n);
        if (nul) {
            n = (size_t)(nul - p);
        }
        if (n > sizeof(ret->msgbuf) - 1) {
            n = sizeof(ret->msgbuf) - 1;
        }
        memcpy(ret->msgbuf, p, n);
        ret->msgbuf[n] = '\0';
        ret->opcode = op;
        ret->block = 0;
        ret->error_code = v;
        ret->error_msg = ret->msgbuf;
        return 0;
    }
    default:
        return -EBADMSG;
    }
}
