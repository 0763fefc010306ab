#include "http/range.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads 1*DIGIT at *p, saturating at UINT64_MAX: a client may write any
 * number of digits (RFC 9110 §14.1.1 sets no limit), and a huge number must
 * mean "huge", never wrap around to a small one. */
static bool read_number(const char **p, const char *end, uint64_t *ret)
{
    const char *s = *p;
    if (s == end || !is_digit(*s)) {
        return false;
    }
    uint64_t v = 0;
    for (; s < end && is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            v = UINT64_MAX;
        } else {
            v = v * 10 + d;
        }
    }
    *p = s;
    *ret = v;
    return true;
}

/* One range-spec in [s, end), already trimmed of OWS. */
static http_range_result range_spec(const char *s, const char *end, uint64_t size, http_range *ret)
{
    uint64_t first, last = UINT64_MAX, suffix;
    if (*s == '-') {
        /* suffix-range = "-" suffix-length */
        s++;
        if (!read_number(&s, end, &suffix) || s != end) {
            return HTTP_RANGE_IGNORE;
        }
        /* §14.1.1: a suffix-range is satisfiable if its suffix-length is
         * greater than zero. An empty entity has no byte to send in a 206
         * (no Content-Range can describe zero bytes), so it goes out whole. */
        if (suffix == 0) {
            return HTTP_RANGE_UNSATISFIABLE;
        }
        if (size == 0) {
            return HTTP_RANGE_IGNORE;
        }
        if (suffix > size) {
            suffix = size;
        }
        *ret = (http_range){ .offset = size - suffix, .length = suffix };
        return HTTP_RANGE_PARTIAL;
    }
    /* int-range = first-pos "-" [ last-pos ] */
    if (!read_number(&s, end, &first) || s == end || *s != '-') {
        return HTTP_RANGE_IGNORE;
    }
    s++;
    if (s != end && (!read_number(&s, end, &last) || s != end)) {
        return HTTP_RANGE_IGNORE;
    }
    /* §14.1.1: a range-spec with last-pos < first-pos is invalid, and an
     * invalid range-set is ignored. */
    if (last < first) {
        return HTTP_RANGE_IGNORE;
    }
    /* §14.1.1: an int-range is satisfiable if first-pos < the length. */
    if (first >= size) {
        return HTTP_RANGE_UNSATISFIABLE;
    }
    if (last > size - 1) {
        last = size - 1;
    }
    *ret = (http_range){ .offset = first, .length = last - first + 1 };
    return HTTP_RANGE_PARTIAL;
}

http_range_result http_range_parse(const char *value, uint64_t size, http_range *ret)
{
    if (!value) {
        return HTTP_RANGE_IGNORE;
    }
    const char *p = value;
    while (is_ows(*p)) {
        p++;
    }
    /* §14.1: range-unit is case-insensitive; no whitespace around "=". */
    if (strncasecmp(p, "bytes=", 6) != 0) {
        return HTTP_RANGE_IGNORE;
    }
    p += 6;
    /* range-set = 1#range-spec: §5.6.1 list rules, so empty members and OWS
     * around commas are allowed. */
    const char *spec = NULL, *spec_end = NULL;
    for (;;) {
        while (is_ows(*p) || *p == ',') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *s = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *e = p;
        while (e > s && is_ows(e[-1])) {
            e--;
        }
        if (spec) {
            /* Several ranges: we do not build multipart/byteranges. */
            return HTTP_RANGE_IGNORE;
        }
        spec = s;
        spec_end = e;
    }
    if (!spec) {
        return HTTP_RANGE_IGNORE;
    }
    return range_spec(spec, spec_end, size, ret);
}

/* The opaque-tag of an entity-tag: without a W/ prefix. */
static const char *opaque_of(const char *etag)
{
    return strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3) */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

bool http_if_none_match(const char *value, const char *etag)
{
    if (!value || !etag) {
        return false;
    }
    const char *mine = opaque_of(etag);
    size_t mine_len = strlen(mine);
    const char *p = value;
    while (is_ows(*p)) {
        p++;
    }
    if (*p == '*') {
        const char *q = p + 1;
        while (is_ows(*q)) {
            q++;
        }
        /* "*" matches any current representation (§13.1.2). */
        return *q == '\0';
    }
    for (;;) {
        while (is_ows(*p) || *p == ',') {
            p++;
        }
        if (!*p) {
            return false;
        }
        /* entity-tag = [ weak ] opaque-tag; weak = %s"W/" (case-sensitive) */
        if (p[0] == 'W' && p[1] == '/') {
            p += 2;
        }
        if (*p != '"') {
            return false;
        }
        const char *start = p++;
        while (*p && is_etagc((unsigned char)*p)) {
            p++;
        }
        if (*p != '"') {
            return false;
        }
        p++;
        size_t len = (size_t)(p - start);
        if (len == mine_len && memcmp(start, mine, len) == 0) {
            return true;
        }
        while (is_ows(*p)) {
            p++;
        }
        if (*p && *p != ',') {
            return false;
        }
    }
}

bool http_if_range_ok(const char *value, const char *etag)
{
    if (!value) {
        return true;
    }
    if (!etag || etag[0] != '"') {
        return false;
    }
    const char *p = value;
    while (is_ows(*p)) {
        p++;
    }
    size_t len = strlen(p);
    while (len > 0 && is_ows(p[len - 1])) {
        len--;
    }
    /* §13.1.5: If-Range uses the strong comparison, so a weak tag on either
     * side never matches. */
    return len >= 2 && p[0] == '"' && len == strlen(etag) && memcmp(p, etag, len) == 0;
}
