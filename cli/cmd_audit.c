/* rackboot audit: who changed what through the controller's API. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "parse.h"
#include "pb.h"
#include "rbproto.h"
#include "render.h"
#include "timeutil.h"
#include "util.h"

static const char audit_help[] =
    "Usage: rackboot audit [--since TIME] [--limit N] [-o FORMAT]\n"
    "\n"
    "Every write made through the controller's API, oldest first: when, who\n"
    "(operator:NAME or viewer:NAME from a certificate, local:uid=N on the local\n"
    "socket), what (hosts add, hosts remove, profiles import, install, cancel),\n"
    "which hosts, and how it ended (ok, or the error the caller got). Refused\n"
    "attempts are listed too. Operators only.\n"
    "\n"
    "  --since TIME  from this time on: 2026-05-01T12:00:00Z, 2026-05-01 (UTC),\n"
    "                or an age: 90s, 30m, 12h, 7d\n"
    "  --limit N     at most N rows (default 1000), fetched in pages\n";

enum { OPT_SINCE = 1000, OPT_LIMIT };

static int parse_digits(const char **p, size_t n, int *ret)
{
    int v = 0;
    for (size_t i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9') {
            return -EINVAL;
        }
        v = v * 10 + (**p - '0');
    }
    *ret = v;
    return 0;
}

static int expect_char(const char **p, char c)
{
    if (**p != c) {
        return -EINVAL;
    }
    (*p)++;
    return 0;
}

int cli_parse_since(const char *s, uint64_t now_ms, uint64_t *ret_ms)
{
    if (strempty(s)) {
        return -EINVAL;
    }
    /* An age: digits and one unit. */
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && s[digits] && !s[digits + 1] && strchr("smhd", s[digits])) {
        static const struct {
            char unit;
            uint64_t ms;
        } units[] = { { 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 } };
        char num[24];
        if (digits >= sizeof(num)) {
            return -EINVAL;
        }
        memcpy(num, s, digits);
        num[digits] = '\0';
        uint64_t n;
        if (parse_u64(num, 0, 100u * 365 * 86400, &n) < 0) {
            return -EINVAL;
        }
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
            if (units[i].unit == s[digits]) {
                uint64_t age = n * units[i].ms; /* no overflow: n is capped above */
                if (age > 100ull * 365 * 86400000) {
                    return -EINVAL; /* a century: a typo */
                }
                *ret_ms = age < now_ms ? now_ms - age : 0;
                return 0;
            }
        }
        return -EINVAL;
    }
    /* RFC 3339 §5.6 in UTC, or a date alone. */
    struct tm tm = { 0 };
    int ms = 0;
    const char *p = s;
    if (parse_digits(&p, 4, &tm.tm_year) < 0 || expect_char(&p, '-') < 0 ||
        parse_digits(&p, 2, &tm.tm_mon) < 0 || expect_char(&p, '-') < 0 ||
        parse_digits(&p, 2, &tm.tm_mday) < 0) {
        return -EINVAL;
    }
    if (*p == 'T' || *p == 't') {
        p++;
        if (parse_digits(&p, 2, &tm.tm_hour) < 0 || expect_char(&p, ':') < 0 ||
            parse_digits(&p, 2, &tm.tm_min) < 0 || expect_char(&p, ':') < 0 ||
            parse_digits(&p, 2, &tm.tm_sec) < 0) {
            return -EINVAL;
        }
        if (*p == '.') {
            p++;
            if (parse_digits(&p, 3, &ms) < 0) {
                return -EINVAL;
            }
        }
        if (*p != 'Z' && *p != 'z') {
            return -EINVAL; /* offsets other than UTC are not taken */
        }
        p++;
    }
    if (*p || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -EINVAL;
    }
    int mday = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0 || tm.tm_mday != mday) { /* 2026-02-30 normalised to March */
        return -EINVAL;
    }
    *ret_ms = (uint64_t)t * 1000 + (uint64_t)ms;
    return 0;
}

/* The pages of one listing: each reply is kept until the rows (which point
 * into them) are printed. */
typedef struct audit_pages {
    Rackboot__V1__ApiReply **replies;
    size_t n_replies;
    Rackboot__V1__AuditRow **rows;
    size_t n_rows;
} audit_pages;

static void audit_pages_clear(audit_pages *p)
{
    for (size_t i = 0; i < p->n_replies; i++) {
        rbproto_api_reply_free(p->replies[i]);
    }
    free(p->replies);
    free(p->rows);
    *p = (audit_pages){ 0 };
}

/* Takes `reply` (consumed, also on failure). */
static int audit_pages_add(audit_pages *p, Rackboot__V1__ApiReply *reply)
{
    Rackboot__V1__ApiReply **nr = realloc(p->replies, (p->n_replies + 1) * sizeof(*nr));
    if (!nr) {
        rbproto_api_reply_free(reply);
        return -ENOMEM;
    }
    p->replies = nr;
    p->replies[p->n_replies++] = reply;
    const Rackboot__V1__AuditList *l = reply->audit;
    if (l->n_rows == 0) {
        return 0;
    }
    Rackboot__V1__AuditRow **rows = realloc(p->rows, (p->n_rows + l->n_rows) * sizeof(*rows));
    if (!rows) {
        return -ENOMEM;
    }
    p->rows = rows;
    memcpy(p->rows + p->n_rows, l->rows, l->n_rows * sizeof(*rows));
    p->n_rows += l->n_rows;
    return 0;
}

/* Asks page after page: the controller caps each reply by size
 * (AuditList.more) and the next one continues after the last seq, until
 * `limit` rows or the end. Printed once, as one table or one JSON array. */
static int audit_fetch(cli *c, uint64_t since, uint32_t limit)
{
    audit_pages pages = { 0 };
    uint64_t after = 0;
    int code = CLI_EXIT_OK;
    for (;;) {
        Rackboot__V1__ApiRequest *req = cli_request_new(RACKBOOT__V1__API_REQUEST__BODY_AUDIT);
        if (!req) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
            break;
        }
        req->audit->since_unix_ms = since;
        req->audit->after_seq = after;
        req->audit->limit = limit - (uint32_t)pages.n_rows;
        Rackboot__V1__ApiReply *reply = NULL;
        code = cli_call(c, req, 0, RACKBOOT__V1__API_REPLY__BODY_AUDIT, &reply);
        cli_pb_free(req);
        if (code != 0) {
            break;
        }
        const Rackboot__V1__AuditList *l = reply->audit;
        bool more = l->more && l->n_rows > 0;
        uint64_t last = l->n_rows > 0 ? l->rows[l->n_rows - 1]->seq : after;
        if (more && last <= after) {
            rbproto_api_reply_free(reply);
            cli_error(c, "the controller's audit pages do not advance (seq %" PRIu64 ")", last);
            code = CLI_EXIT_FAILED;
            break;
        }
        if (audit_pages_add(&pages, reply) < 0) {
            cli_error(c, "out of memory");
            code = CLI_EXIT_FAILED;
            break;
        }
        if (!more || pages.n_rows >= limit) {
            break;
        }
        after = last;
    }
    if (code == CLI_EXIT_OK) {
        Rackboot__V1__AuditList all = RACKBOOT__V1__AUDIT_LIST__INIT;
        all.rows = pages.rows;
        all.n_rows = pages.n_rows > limit ? limit : pages.n_rows;
        int r = 0;
        if (output_structured(c->format)) {
            r = output_print(c->out, c->format, render_audit_json(&all), RENDER_NAME_AUDIT);
        } else {
            render_audit_text(c->out, &all);
        }
        code = r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    }
    audit_pages_clear(&pages);
    return code;
}

int cmd_audit(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "since", required_argument, NULL, OPT_SINCE },
        { "limit", required_argument, NULL, OPT_LIMIT },
        CLI_OUTPUT_LONGOPTS,
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    uint64_t since = 0, limit = 0;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":h" CLI_OUTPUT_SHORTOPTS, opts, NULL)) != -1) {
        switch (ch) {
        case OPT_SINCE:
            if (cli_parse_since(optarg, now_realtime_ms(), &since) < 0) {
                return cli_usage_error(c, "audit ",
                                       "--since %s: expected a time like 2026-05-01T12:00:00Z, "
                                       "a date, or an age like 7d",
                                       optarg);
            }
            break;
        case OPT_LIMIT:
            if (parse_u64(optarg, 1, RBPROTO_MAX_AUDIT_ROWS, &limit) < 0) {
                return cli_usage_error(c, "audit ", "--limit %s: expected 1-%u", optarg,
                                       RBPROTO_MAX_AUDIT_ROWS);
            }
            break;
        case 'h':
            fputs(audit_help, c->out);
            return CLI_EXIT_OK;
        default:
            if (cli_common_option(c, "audit ", ch, argv) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
            break;
        }
    }
    if (argc != optind) {
        return cli_usage_error(c, "audit ", "unexpected argument '%s'", argv[optind]);
    }
    return audit_fetch(c, since, limit ? (uint32_t)limit : RBPROTO_AUDIT_DEFAULT_ROWS);
}
