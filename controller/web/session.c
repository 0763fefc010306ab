/* web/session: login tokens and sessions (see session.h). */
#include "web/session.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"
#include "sha256.h"
#include "util.h"

/* A token as kept: its digest, never the token. */
typedef struct entry {
    uint8_t digest[SHA256_LEN];
    web_identity id;
} entry;

typedef struct table {
    entry *rows;
    size_t n, cap, max;
} table;

struct web_sessions {
    table logins;
    table sessions;
};

int web_sessions_new(web_sessions **ret)
{
    web_sessions *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        return -ENOMEM;
    }
    ws->logins.rows = calloc(WEB_MAX_LOGINS, sizeof(entry));
    /* Sessions grow as people sign in: most controllers see a handful. */
    if (!ws->logins.rows) {
        free(ws);
        return -ENOMEM;
    }
    ws->logins.cap = ws->logins.max = WEB_MAX_LOGINS;
    ws->sessions.max = WEB_MAX_SESSIONS;
    *ret = ws;
    return 0;
}

web_sessions *web_sessions_free(web_sessions *ws)
{
    if (ws) {
        /* The digests are not secrets, but there is no reason to leave
         * them in freed memory either. */
        OPENSSL_cleanse(ws->logins.rows, ws->logins.max * sizeof(entry));
        if (ws->sessions.rows) {
            OPENSSL_cleanse(ws->sessions.rows, ws->sessions.n * sizeof(entry));
        }
        free(ws->logins.rows);
        free(ws->sessions.rows);
        free(ws);
    }
    return NULL;
}

static void table_remove(table *t, size_t i)
{
    t->rows[i] = t->rows[--t->n];
    OPENSSL_cleanse(&t->rows[t->n], sizeof(entry));
}

static void table_prune(table *t, uint64_t now_ms)
{
    for (size_t i = t->n; i-- > 0;) {
        if (now_ms >= t->rows[i].id.expires_ms) {
            table_remove(t, i);
        }
    }
}

/* The row whose digest is `digest`, or -1. Every row is compared in full
 * whatever matched before, so the time taken tells nothing of where or
 * how closely a guess matched. */
static ssize_t table_find(const table *t, const uint8_t digest[SHA256_LEN])
{
    ssize_t found = -1;
    for (size_t i = 0; i < t->n; i++) {
        bool hit = CRYPTO_memcmp(t->rows[i].digest, digest, SHA256_LEN) == 0;
        if (hit && found < 0) {
            found = (ssize_t)i;
        }
    }
    return found;
}

/* A token is exactly WEB_TOKEN_CHARS lower-case hex digits; anything else
 * is refused before any lookup. */
static bool token_well_formed(const char *token)
{
    if (!token) {
        return false;
    }
    size_t i = 0;
    for (; token[i]; i++) {
        char c = token[i];
        if (i >= WEB_TOKEN_CHARS || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return i == WEB_TOKEN_CHARS;
}

static int token_digest(const char *token, uint8_t ret[SHA256_LEN])
{
    return sha256_buffer(token, WEB_TOKEN_CHARS, ret) < 0 ? -EIO : 0;
}

/* A fresh token in `token` and its digest. */
static int token_new(char token[WEB_TOKEN_CHARS + 1], uint8_t ret_digest[SHA256_LEN])
{
    uint8_t raw[WEB_TOKEN_BYTES];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        return -EIO;
    }
    hex_encode(raw, sizeof(raw), token);
    token[WEB_TOKEN_CHARS] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return token_digest(token, ret_digest);
}

int web_login_issue(web_sessions *ws, const char *who, web_role role, uint64_t now_ms,
                    char ret_token[WEB_TOKEN_CHARS + 1])
{
    if (!who || !*who || strlen(who) > WEB_WHO_MAX ||
        (role != WEB_ROLE_VIEWER && role != WEB_ROLE_OPERATOR)) {
        return -EINVAL;
    }
    table *t = &ws->logins;
    table_prune(t, now_ms);
    if (t->n == t->max) {
        return -ENOSPC;
    }
    entry e = { .id = { .role = role, .expires_ms = now_ms + WEB_LOGIN_TTL_MS } };
    snprintf(e.id.who, sizeof(e.id.who), "%s", who);
    char token[WEB_TOKEN_CHARS + 1];
    int r = token_new(token, e.digest);
    if (r < 0) {
        return r;
    }
    t->rows[t->n++] = e;
    memcpy(ret_token, token, sizeof(token));
    OPENSSL_cleanse(token, sizeof(token));
    return 0;
}

/* Room for one more session: the expired go, and when it is still full
 * the one that would expire first. */
static int sessions_make_room(table *t, uint64_t now_ms)
{
    table_prune(t, now_ms);
    if (t->n == t->max) {
        size_t oldest = 0;
        for (size_t i = 1; i < t->n; i++) {
            if (t->rows[i].id.expires_ms < t->rows[oldest].id.expires_ms) {
                oldest = i;
            }
        }
        table_remove(t, oldest);
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 4;
        cap = cap > t->max ? t->max : cap;
        entry *bigger = realloc(t->rows, cap * sizeof(entry));
        if (!bigger) {
            return -ENOMEM;
        }
        t->rows = bigger;
        t->cap = cap;
    }
    return 0;
}

int web_login_redeem(web_sessions *ws, const char *token, uint64_t now_ms,
                     char ret_session[WEB_TOKEN_CHARS + 1], const web_identity **ret_id)
{
    uint8_t digest[SHA256_LEN];
    if (!token_well_formed(token) || token_digest(token, digest) < 0) {
        return -EACCES;
    }
    table *logins = &ws->logins;
    ssize_t i = table_find(logins, digest);
    if (i < 0) {
        return -EACCES;
    }
    /* Spent now, even when it turns out expired or no session can be made:
     * a login link works at most once. */
    web_identity id = logins->rows[i].id;
    table_remove(logins, (size_t)i);
    if (now_ms >= id.expires_ms) {
        return -EACCES;
    }
    table *t = &ws->sessions;
    int r = sessions_make_room(t, now_ms);
    if (r < 0) {
        return r;
    }
    entry e = { .id = id };
    e.id.expires_ms = now_ms + WEB_SESSION_TTL_MS;
    char session[WEB_TOKEN_CHARS + 1];
    r = token_new(session, e.digest);
    if (r < 0) {
        return r;
    }
    t->rows[t->n] = e;
    *ret_id = &t->rows[t->n].id;
    t->n++;
    memcpy(ret_session, session, sizeof(session));
    OPENSSL_cleanse(session, sizeof(session));
    return 0;
}

const web_identity *web_session_find(web_sessions *ws, const char *session, uint64_t now_ms)
{
    uint8_t digest[SHA256_LEN];
    if (!token_well_formed(session) || token_digest(session, digest) < 0) {
        return NULL;
    }
    table *t = &ws->sessions;
    ssize_t i = table_find(t, digest);
    if (i < 0) {
        return NULL;
    }
    if (now_ms >= t->rows[i].id.expires_ms) {
        table_remove(t, (size_t)i);
        return NULL;
    }
    return &t->rows[i].id;
}

int web_session_end(web_sessions *ws, const char *session)
{
    uint8_t digest[SHA256_LEN];
    if (!token_well_formed(session) || token_digest(session, digest) < 0) {
        return -ENOENT;
    }
    ssize_t i = table_find(&ws->sessions, digest);
    if (i < 0) {
        return -ENOENT;
    }
    table_remove(&ws->sessions, (size_t)i);
    return 0;
}

size_t web_sessions_pending_logins(const web_sessions *ws)
{
    return ws->logins.n;
}

size_t web_sessions_count(const web_sessions *ws)
{
    return ws->sessions.n;
}

int web_session_cookie(const char *session, uint64_t max_age_s, char *buf, size_t size)
{
    /* Secure: HTTPS only. HttpOnly: no script reads it. SameSite=Strict:
     * no other site's page makes the browser send it, the first line of
     * defence against cross-site writes (the Origin check is the second). */
    int n = snprintf(buf, size,
                     WEB_COOKIE_NAME "=%s; Path=/; Max-Age=%" PRIu64
                                     "; HttpOnly; Secure; SameSite=Strict",
                     session, max_age_s);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

int web_cookie_find(const char *header, const char *name, char *out, size_t size)
{
    if (!header) {
        return -ENOENT;
    }
    size_t name_len = strlen(name);
    for (const char *p = header; *p;) {
        p = skip_ows(p);
        size_t pair = strcspn(p, ";");
        const char *eq = memchr(p, '=', pair);
        if (eq) {
            size_t klen = (size_t)(eq - p);
            while (klen > 0 && (p[klen - 1] == ' ' || p[klen - 1] == '\t')) {
                klen--;
            }
            if (klen == name_len && memcmp(p, name, name_len) == 0) {
                const char *v = skip_ows(eq + 1);
                size_t vlen = (size_t)(p + pair - v);
                while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
                    vlen--;
                }
                if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                    v++;
                    vlen -= 2;
                }
                if (vlen >= size) {
                    return -E2BIG;
                }
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return 0;
            }
        }
        p += pair;
        if (*p == ';') {
            p++;
        }
    }
    return -ENOENT;
}
