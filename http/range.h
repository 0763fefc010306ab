/* HTTP conditional and range request headers, as pure functions over the
 * header text (no sockets, no allocation), so tests and the fuzzer drive them
 * directly.
 *
 *   Range          RFC 9110 §14.2, one byte range per request: `bytes=a-b`,
 *                  `bytes=a-`, `bytes=-n`. Multi-range requests are answered
 *                  with the whole entity, which §14.2 allows ("a server MAY
 *                  ignore the Range header field").
 *   If-None-Match  RFC 9110 §13.1.2, weak comparison.
 *   If-Range       RFC 9110 §13.1.5, strong comparison. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum http_range_result {
    /* Serve the whole entity with 200: no Range, a unit other than bytes,
     * malformed text, several ranges, or an empty entity. */
    HTTP_RANGE_IGNORE = 0,
    /* Serve *ret with 206 Partial Content. */
    HTTP_RANGE_PARTIAL,
    /* Answer 416 with `Content-Range: bytes * / SIZE` (RFC 9110 §14.4). */
    HTTP_RANGE_UNSATISFIABLE,
} http_range_result;

typedef struct http_range {
    uint64_t offset;
    uint64_t length; /* > 0, offset + length <= size */
} http_range;

/* Interprets a Range header `value` (NULL: no header) for an entity of `size`
 * bytes. *ret is written only for HTTP_RANGE_PARTIAL. Numbers of any length
 * are read without overflow: a first position past 2^64 - 1 is past the end,
 * a last position or suffix length past it reaches the end. */
http_range_result http_range_parse(const char *value, uint64_t size, http_range *ret);

/* True when an If-None-Match header `value` matches the current entity tag
 * `etag` (quoted, optionally W/-prefixed): `*`, or any listed tag whose
 * opaque part equals etag's (weak comparison: the W/ prefixes are ignored).
 * A malformed list matches nothing from the first malformed member on. */
bool http_if_none_match(const char *value, const char *etag);

/* True when a Range may be honoured given an If-Range header `value` (NULL: no
 * header): the value must be a strong entity tag equal to `etag`, which must
 * itself be strong. A date, a weak tag or anything else means "send the whole
 * entity" (we send no Last-Modified, so no date can validate). */
bool http_if_range_ok(const char *value, const char *etag);
