/* web/session: signing in to the controller's web view without passwords
 * (issue 18).
 *
 * An operator or viewer who has proven a certificate on the API asks for a
 * login (`rackboot web login`); the controller issues a random login token
 * bound to that identity and role, valid once and for WEB_LOGIN_TTL_MS,
 * and prints it inside a URL. Opening the URL redeems the token for a
 * session token, which the browser keeps in a cookie (HttpOnly, Secure,
 * SameSite=Strict) for WEB_SESSION_TTL_MS; every page and write is made as
 * the session's identity.
 *
 * Tokens are WEB_TOKEN_BYTES from getrandom(2), written as lower-case hex.
 * Only their SHA-256 digests are kept, compared with CRYPTO_memcmp against
 * every entry, so neither a memory dump nor response times tell a token.
 * Both tables are bounded: WEB_MAX_LOGINS pending logins (more are refused
 * until some expire or are used) and WEB_MAX_SESSIONS sessions (the one
 * closest to its expiry makes room). State is in memory only: a restarted
 * controller asks everyone to sign in again.
 *
 * Pure apart from getrandom(2): the clock is the caller's (now_ms), so
 * tests drive expiry. Loop thread only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct web_sessions web_sessions;

typedef enum web_role {
    WEB_ROLE_VIEWER,   /* sees */
    WEB_ROLE_OPERATOR, /* sees, installs and cancels */
} web_role;

#define WEB_TOKEN_BYTES    32u
#define WEB_TOKEN_CHARS    (2u * WEB_TOKEN_BYTES) /* hex */
#define WEB_LOGIN_TTL_MS   (5u * 60u * 1000u)
#define WEB_SESSION_TTL_MS (12u * 3600u * 1000u)
#define WEB_MAX_LOGINS     256u
#define WEB_MAX_SESSIONS   4096u
#define WEB_WHO_MAX        160u /* "operator:NAME" as the API's audit log writes it */
#define WEB_COOKIE_NAME    "rackboot_session"

typedef struct web_identity {
    web_role role;
    char who[WEB_WHO_MAX + 1]; /* "operator:alice": whom the token was issued to */
    uint64_t expires_ms;       /* on the caller's clock */
} web_identity;

int web_sessions_new(web_sessions **ret);
web_sessions *web_sessions_free(web_sessions *ws);

/* A new login token for `who` (at most WEB_WHO_MAX bytes, else -EINVAL) in
 * `role`, valid until now_ms + WEB_LOGIN_TTL_MS and only once. -ENOSPC
 * when WEB_MAX_LOGINS are pending and none has expired, -EIO when
 * getrandom(2) fails. */
int web_login_issue(web_sessions *ws, const char *who, web_role role, uint64_t now_ms,
                    char ret_token[WEB_TOKEN_CHARS + 1]);

/* Redeems a login token: it is spent whatever follows, and a new session
 * for its identity begins, valid until now_ms + WEB_SESSION_TTL_MS.
 * -EACCES for a token that is malformed, unknown, spent or expired (one
 * answer for all: the page says "this login link is not valid"), -EIO when
 * getrandom(2) fails. *ret_id points into the table until the session
 * ends or the next call that changes it. */
int web_login_redeem(web_sessions *ws, const char *token, uint64_t now_ms,
                     char ret_session[WEB_TOKEN_CHARS + 1], const web_identity **ret_id);

/* The identity of a live session token; NULL for an unknown or expired one
 * (an expired one is forgotten). Valid as for web_login_redeem(). */
const web_identity *web_session_find(web_sessions *ws, const char *session, uint64_t now_ms);

/* Ends a session (sign out). -ENOENT when there was none. */
int web_session_end(web_sessions *ws, const char *session);

size_t web_sessions_pending_logins(const web_sessions *ws);
size_t web_sessions_count(const web_sessions *ws);

/* The Set-Cookie value that carries `session` for `max_age_s` seconds:
 * "rackboot_session=HEX; Path=/; Max-Age=N; HttpOnly; Secure;
 * SameSite=Strict". -ENOSPC when `size` is too small. */
int web_session_cookie(const char *session, uint64_t max_age_s, char *buf, size_t size);

/* The value of cookie `name` in a Cookie request header (RFC 6265 §5.4:
 * "a=1; b=2", a value may be in double quotes), the first one when the
 * name repeats. -ENOENT when absent (or `header` is NULL), -E2BIG when the
 * value does not fit in `size` bytes with its NUL. Pairs without '=' are
 * skipped, as browsers do. */
int web_cookie_find(const char *header, const char *name, char *out, size_t size);
