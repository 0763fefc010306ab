/* errmsg: for functions that explain a failure in a malloc'ed `*ret_error`
 * (which the caller may pass as NULL when it wants only the code). */
#pragma once

/* Formats the message into `*ret_error` (NULL when out of memory; nothing
 * when `ret_error` is NULL) and returns `r`, so that a failure path reads
 * `return errmsg_fail(ret_error, -EINVAL, "bad %s", what);`. */
int errmsg_fail(char **ret_error, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
