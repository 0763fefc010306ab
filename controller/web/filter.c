/* web/filter: the host list's query (see filter.h). */
#include "web/filter.h"

#include <errno.h>
#include <string.h>

#include "install_fsm.h"
#include "parse.h"
#include "rbproto.h"
#include "util.h"

/* A name as the store has them: [A-Za-z0-9._-], at most WEB_NAME_MAX. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= WEB_NAME_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789._-") == n;
}

static int copy_name(const char *value, char out[WEB_NAME_MAX + 1])
{
    if (!value) {
        return 0;
    }
    if (!name_ok(value)) {
        return -EINVAL;
    }
    memcpy(out, value, strlen(value) + 1);
    return 0;
}

/* Comma-separated words, each turned into a bit by `bit_of` (-1: unknown). */
static int parse_set(const char *value, int (*bit_of)(const char *word), uint64_t *ret)
{
    uint64_t set = 0;
    char word[32];
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(word)) {
            return -EINVAL;
        }
        memcpy(word, p, n);
        word[n] = '\0';
        int bit = bit_of(word);
        if (bit < 0 || bit >= 64) {
            return -EINVAL;
        }
        set |= UINT64_C(1) << bit;
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) {
                return -EINVAL;
            }
        }
    }
    *ret = set;
    return 0;
}

static int state_bit(const char *word)
{
    install_state s;
    if (streq(word, "none")) {
        return 0;
    }
    return install_state_from_string(word, &s) < 0 ? -1 : (int)s;
}

static int phase_bit(const char *word)
{
    Rackboot__V1__Phase p;
    return rbproto_phase_from_string(word, &p) < 0 ? -1 : (int)p;
}

int web_host_filter_parse(const char *(*get)(void *userdata, const char *key), void *userdata,
                          web_host_filter *ret, const char **ret_why)
{
    web_host_filter f = { .limit = WEB_PAGE_DEFAULT };
    const char *v;
    uint64_t set;
    if (copy_name(get(userdata, "rack"), f.rack) < 0) {
        *ret_why = "rack: not a rack name";
        return -EINVAL;
    }
    if (copy_name(get(userdata, "prefix"), f.prefix) < 0) {
        *ret_why = "prefix: not the start of a host name";
        return -EINVAL;
    }
    if (copy_name(get(userdata, "after"), f.after) < 0) {
        *ret_why = "after: not a host name";
        return -EINVAL;
    }
    if ((v = get(userdata, "state")) && *v) {
        if (parse_set(v, state_bit, &set) < 0) {
            *ret_why = "state: expected install states (or none), separated by commas";
            return -EINVAL;
        }
        f.states = (uint32_t)set;
    }
    if ((v = get(userdata, "phase")) && *v) {
        if (parse_set(v, phase_bit, &f.phases) < 0) {
            *ret_why = "phase: expected phases, separated by commas";
            return -EINVAL;
        }
    }
    if ((v = get(userdata, "limit")) && parse_u32(v, 1, WEB_PAGE_MAX, &f.limit) < 0) {
        *ret_why = "limit: expected 1 to 1000";
        return -EINVAL;
    }
    *ret = f;
    return 0;
}

bool web_host_filter_match(const web_host_filter *f, const store_status *st)
{
    if (f->rack[0] && !streq(st->rack, f->rack)) {
        return false;
    }
    if (f->after[0] && strcmp(st->host, f->after) <= 0) {
        return false;
    }
    if (f->prefix[0] && strncmp(st->host, f->prefix, strlen(f->prefix)) != 0) {
        return false;
    }
    unsigned state = (unsigned)st->state; /* 0: never installed, "none" */
    if (f->states && (state >= 32 || !(f->states & (UINT32_C(1) << state)))) {
        return false;
    }
    unsigned phase = (unsigned)st->phase;
    if (f->phases && (phase >= 64 || !(f->phases & (UINT64_C(1) << phase)))) {
        return false;
    }
    return true;
}
