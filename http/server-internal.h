/* What tests and fuzzers reach inside http/server.c besides server.h. */
#pragma once

/* Decodes the path of a request target once, as every request is before
 * routing: "%3A" and ':' give the same path, the query is dropped, and the
 * absolute form's path is taken. Returns 0 and a malloc()ed path in *ret, or
 * the status the request is refused with (*ret not written): 400 for a
 * target that is not a path, a broken escape or an encoded NUL; 403 for "."
 * and ".." segments, literal or encoded; 500 when out of memory. */
unsigned http_decode_path(const char *target, char **ret);
