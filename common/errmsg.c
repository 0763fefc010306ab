#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>

int errmsg_fail(char **ret_error, int r, const char *fmt, ...)
{
    if (ret_error) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0) {
            *ret_error = NULL;
        }
        va_end(ap);
    }
    return r;
}
