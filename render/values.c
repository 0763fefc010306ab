#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "render/render-internal.h"
#include "util.h"

bool render_id_valid(const char *s)
{
    if (!s || !*s || streq(s, ".") || streq(s, "..")) {
        return false;
    }
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok || n >= 128) {
            return false;
        }
    }
    return true;
}

bool render_cmdline_extra_valid(const char *s)
{
    if (!s) {
        return true;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f) {
            return false;
        }
    }
    return true;
}

void render_format_addr(const void *in6_addr, char buf[RENDER_ADDR_LEN])
{
    if (!inet_ntop(AF_INET6, in6_addr, buf, RENDER_ADDR_LEN)) {
        /* Cannot fail for AF_INET6 with a buffer of INET6_ADDRSTRLEN. */
        RB_ASSERT(!"inet_ntop failed");
    }
}
