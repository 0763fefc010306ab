/* controller/web/session: login tokens are single use and expire, sessions
 * expire and are bounded, the cookie carries the attributes that keep it
 * from scripts, plain HTTP and other sites, and the Cookie header parser
 * finds the value among others. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "web/session.h"

#define T0 1700000000000ull /* ms */

static int setup(void **state)
{
    web_sessions *ws = NULL;
    assert_int_equal(web_sessions_new(&ws), 0);
    *state = ws;
    return 0;
}

static int teardown(void **state)
{
    web_sessions_free(*state);
    return 0;
}

static void test_login_once(void **state)
{
    web_sessions *ws = *state;
    char token[WEB_TOKEN_CHARS + 1], session[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    assert_int_equal(web_login_issue(ws, "operator:alice", WEB_ROLE_OPERATOR, T0, token), 0);
    assert_int_equal(strlen(token), WEB_TOKEN_CHARS);
    assert_int_equal(strspn(token, "0123456789abcdef"), WEB_TOKEN_CHARS);
    assert_int_equal(web_sessions_pending_logins(ws), 1);
    assert_int_equal(web_login_redeem(ws, token, T0 + 1000, session, &id), 0);
    assert_non_null(id);
    assert_string_equal(id->who, "operator:alice");
    assert_int_equal(id->role, WEB_ROLE_OPERATOR);
    assert_int_equal(id->expires_ms, T0 + 1000 + WEB_SESSION_TTL_MS);
    assert_string_not_equal(session, token);
    /* Reused: refused, and the session it made lives on. */
    assert_int_equal(web_login_redeem(ws, token, T0 + 2000, session + 0, &id), -EACCES);
    assert_int_equal(web_sessions_pending_logins(ws), 0);
    assert_int_equal(web_sessions_count(ws), 1);
}

static void test_login_expires(void **state)
{
    web_sessions *ws = *state;
    char token[WEB_TOKEN_CHARS + 1], again[WEB_TOKEN_CHARS + 1], session[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    assert_int_equal(web_login_issue(ws, "viewer:bob", WEB_ROLE_VIEWER, T0, token), 0);
    assert_int_equal(web_login_issue(ws, "viewer:bob", WEB_ROLE_VIEWER, T0, again), 0);
    assert_string_not_equal(token, again);
    /* The last millisecond still works, the next does not. */
    assert_int_equal(web_login_redeem(ws, token, T0 + WEB_LOGIN_TTL_MS - 1, session, &id), 0);
    assert_int_equal(web_login_redeem(ws, again, T0 + WEB_LOGIN_TTL_MS, session, &id), -EACCES);
    assert_int_equal(web_sessions_count(ws), 1);
    /* An expired token is spent too: it does not come back. */
    assert_int_equal(web_sessions_pending_logins(ws), 0);
}

static void test_bad_tokens(void **state)
{
    web_sessions *ws = *state;
    char token[WEB_TOKEN_CHARS + 1], session[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    assert_int_equal(web_login_issue(ws, "operator:alice", WEB_ROLE_OPERATOR, T0, token), 0);
    char wrong[WEB_TOKEN_CHARS + 1];
    memcpy(wrong, token, sizeof(wrong));
    wrong[WEB_TOKEN_CHARS - 1] = wrong[WEB_TOKEN_CHARS - 1] == '0' ? '1' : '0';
    assert_int_equal(web_login_redeem(ws, wrong, T0, session, &id), -EACCES);
    char upper[WEB_TOKEN_CHARS + 1];
    memcpy(upper, token, sizeof(upper));
    for (char *c = upper; *c; c++) {
        *c = *c >= 'a' ? (char)(*c - 32) : *c;
    }
    assert_int_equal(web_login_redeem(ws, upper, T0, session, &id), -EACCES);
    char longer[WEB_TOKEN_CHARS + 2];
    snprintf(longer, sizeof(longer), "%s0", token);
    assert_int_equal(web_login_redeem(ws, longer, T0, session, &id), -EACCES);
    assert_int_equal(web_login_redeem(ws, "", T0, session, &id), -EACCES);
    assert_int_equal(web_login_redeem(ws, NULL, T0, session, &id), -EACCES);
    /* A wrong guess does not spend the real token. */
    assert_int_equal(web_login_redeem(ws, token, T0, session, &id), 0);
    /* A login token is no session, nor the other way round. */
    assert_null(web_session_find(ws, token, T0));
    assert_int_equal(web_login_redeem(ws, session, T0, session, &id), -EACCES);
    assert_int_equal(web_login_issue(ws, "", WEB_ROLE_VIEWER, T0, token), -EINVAL);
    char big[WEB_WHO_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(web_login_issue(ws, big, WEB_ROLE_VIEWER, T0, token), -EINVAL);
}

static void test_session_expires_and_ends(void **state)
{
    web_sessions *ws = *state;
    char token[WEB_TOKEN_CHARS + 1], a[WEB_TOKEN_CHARS + 1], b[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    assert_int_equal(web_login_issue(ws, "viewer:bob", WEB_ROLE_VIEWER, T0, token), 0);
    assert_int_equal(web_login_redeem(ws, token, T0, a, &id), 0);
    assert_int_equal(web_login_issue(ws, "operator:alice", WEB_ROLE_OPERATOR, T0, token), 0);
    assert_int_equal(web_login_redeem(ws, token, T0, b, &id), 0);
    id = web_session_find(ws, a, T0 + WEB_SESSION_TTL_MS - 1);
    assert_non_null(id);
    assert_string_equal(id->who, "viewer:bob");
    assert_int_equal(id->role, WEB_ROLE_VIEWER);
    assert_null(web_session_find(ws, a, T0 + WEB_SESSION_TTL_MS));
    assert_int_equal(web_sessions_count(ws), 1); /* forgotten once found expired */
    id = web_session_find(ws, b, T0 + 5);
    assert_non_null(id);
    assert_string_equal(id->who, "operator:alice");
    assert_int_equal(web_session_end(ws, b), 0);
    assert_null(web_session_find(ws, b, T0 + 6));
    assert_int_equal(web_session_end(ws, b), -ENOENT);
}

/* Pending logins are bounded (expired ones make room); sessions are bounded
 * too, the one closest to expiry giving way. */
static void test_limits(void **state)
{
    web_sessions *ws = *state;
    char token[WEB_TOKEN_CHARS + 1], first[WEB_TOKEN_CHARS + 1], s[WEB_TOKEN_CHARS + 1];
    const web_identity *id = NULL;
    for (unsigned i = 0; i < WEB_MAX_LOGINS; i++) {
        assert_int_equal(web_login_issue(ws, "viewer:v", WEB_ROLE_VIEWER, T0, token), 0);
    }
    assert_int_equal(web_login_issue(ws, "viewer:v", WEB_ROLE_VIEWER, T0 + 1, token), -ENOSPC);
    assert_int_equal(web_login_issue(ws, "viewer:v", WEB_ROLE_VIEWER, T0 + WEB_LOGIN_TTL_MS, token),
                     0);
    assert_int_equal(web_sessions_pending_logins(ws), 1);
    uint64_t now = T0 + WEB_LOGIN_TTL_MS;
    assert_int_equal(web_login_redeem(ws, token, now, first, &id), 0);
    for (unsigned i = 1; i <= WEB_MAX_SESSIONS; i++) {
        assert_int_equal(web_login_issue(ws, "viewer:v", WEB_ROLE_VIEWER, now + i, token), 0);
        assert_int_equal(web_login_redeem(ws, token, now + i, s, &id), 0);
    }
    assert_int_equal(web_sessions_count(ws), WEB_MAX_SESSIONS);
    assert_null(web_session_find(ws, first, now + WEB_MAX_SESSIONS));
    assert_non_null(web_session_find(ws, s, now + WEB_MAX_SESSIONS));
}

static void test_cookie(void **state)
{
    char buf[256];
    const char *sid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(web_session_cookie(sid, 43200, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "rackboot_session=0123456789abcdef0123456789abcdef0123456789abcdef01"
                             "23456789abcdef; Path=/; Max-Age=43200; HttpOnly; Secure; "
                             "SameSite=Strict");
    assert_int_equal(web_session_cookie(sid, 43200, buf, 40), -ENOSPC);
}

static void test_cookie_find(void **state)
{
    char v[16];
    assert_int_equal(web_cookie_find("a=1; rackboot_session=abc; b=2", WEB_COOKIE_NAME, v, 16), 0);
    assert_string_equal(v, "abc");
    assert_int_equal(web_cookie_find("rackboot_session=\"q\"", WEB_COOKIE_NAME, v, 16), 0);
    assert_string_equal(v, "q");
    assert_int_equal(
        web_cookie_find(" x ; rackboot_session = s1 ;rackboot_session=s2", WEB_COOKIE_NAME, v, 16),
        0);
    assert_string_equal(v, "s1");
    assert_int_equal(
        web_cookie_find("xrackboot_session=1; rackboot_sessionx=2", WEB_COOKIE_NAME, v, 16),
        -ENOENT);
    assert_int_equal(web_cookie_find("rackboot_session=", WEB_COOKIE_NAME, v, 16), 0);
    assert_string_equal(v, "");
    assert_int_equal(web_cookie_find("", WEB_COOKIE_NAME, v, 16), -ENOENT);
    assert_int_equal(web_cookie_find(NULL, WEB_COOKIE_NAME, v, 16), -ENOENT);
    assert_int_equal(web_cookie_find("rackboot_session=0123456789abcdef", WEB_COOKIE_NAME, v, 16),
                     -E2BIG);
    assert_int_equal(web_cookie_find("rackboot_session=0123456789abcde", WEB_COOKIE_NAME, v, 16),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expires_and_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_cookie_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
