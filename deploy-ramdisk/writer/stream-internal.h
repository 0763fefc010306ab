/* stream internals for tests and the fuzzer: the pure parts. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Parses a Content-Range value (RFC 9110 §14.4): "bytes FIRST-LAST/COMPLETE"
 * where COMPLETE is a number or an asterisk (unknown: *ret_complete is 0),
 * surrounding blanks allowed. -EBADMSG for anything else, including
 * LAST < FIRST, COMPLETE <= LAST and numbers above 2^63. */
int stream_parse_content_range(const char *value, size_t len, uint64_t *ret_first,
                               uint64_t *ret_last, uint64_t *ret_complete);
