#include "render/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render/render-internal.h"
#include "util.h"

/* The hook script. %u: the number of half-second polls; %u: seconds (its
 * bound, said when it starts waiting); %u: the polls; %u: seconds. The time
 * it says it waited is the kernel's (/proc/uptime, centiseconds): under a
 * slow CPU the `ip` calls take longer than the sleeps. */
static const char hook_fmt[] =
    "# rackboot overlay: wait until IPv6 is usable before Anaconda fetches the\n"
    "# kickstart (11-fetch-kickstart-net.sh, which sorts after this file): a\n"
    "# default route, and no address still tentative (DAD). dracut sources this\n"
    "# file with the interface as $1: it must fall through to its end, never\n"
    "# leave the shell. It says when it has to wait, and for how long it did.\n"
    "rb_wait_say() {\n"
    "    if command -v \"$1\" >/dev/null 2>&1; then\n"
    "        \"$1\" \"$2\"\n"
    "    else\n"
    "        echo \"$2\" >&2\n"
    "    fi\n"
    "}\n"
    "rb_wait_cs() {\n"
    "    read -r rb_wait_up rb_wait_x </proc/uptime 2>/dev/null || rb_wait_up=0.00\n"
    "    rb_wait_x=${rb_wait_up#*.}\n"
    "    echo $((${rb_wait_up%%.*} * 100 + ${rb_wait_x#0}))\n"
    "}\n"
    "rb_wait_if=\"$1\"\n"
    "rb_wait_n=0\n"
    "rb_wait_t0=$(rb_wait_cs)\n"
    "while [ \"$rb_wait_n\" -lt %u ]; do\n"
    "    if [ -n \"$rb_wait_if\" ]; then\n"
    "        rb_wait_route=$(ip -6 route show default dev \"$rb_wait_if\" 2>/dev/null)\n"
    "        rb_wait_tent=$(ip -6 addr show dev \"$rb_wait_if\" tentative 2>/dev/null)\n"
    "    else\n"
    "        rb_wait_route=$(ip -6 route show default 2>/dev/null)\n"
    "        rb_wait_tent=$(ip -6 addr show tentative 2>/dev/null)\n"
    "    fi\n"
    "    if [ -n \"$rb_wait_route\" ] && [ -z \"$rb_wait_tent\" ]; then\n"
    "        break\n"
    "    fi\n"
    "    if [ \"$rb_wait_n\" -eq 0 ]; then\n"
    "        rb_wait_say info \"rackboot: waiting for IPv6 on ${rb_wait_if:-any interface} "
    "(default route, no tentative address), at most %u s\"\n"
    "    fi\n"
    "    sleep 0.5\n"
    "    rb_wait_n=$((rb_wait_n + 1))\n"
    "done\n"
    "rb_wait_t0=$(($(rb_wait_cs) - rb_wait_t0))\n"
    "if [ \"$rb_wait_n\" -ge %u ]; then\n"
    "    rb_wait_say warn \"rackboot: no IPv6 default route on ${rb_wait_if:-any interface} after "
    "%u s\"\n"
    "else\n"
    "    rb_wait_say info \"rackboot: IPv6 ready on ${rb_wait_if:-any interface} after "
    "$((rb_wait_t0 / 100)).$((rb_wait_t0 %% 100 / 10)) s (default route, no tentative "
    "address)\"\n"
    "fi\n"
    "unset -f rb_wait_say rb_wait_cs\n"
    "unset rb_wait_if rb_wait_n rb_wait_t0 rb_wait_up rb_wait_x rb_wait_route rb_wait_tent\n";

int render_overlay_hook(unsigned wait_seconds, char **ret, size_t *ret_len)
{
    if (wait_seconds < 1 || wait_seconds > RENDER_OVERLAY_WAIT_MAX) {
        return -EINVAL;
    }
    rbuf b = { 0 };
    rbuf_printf(&b, hook_fmt, 2 * wait_seconds, wait_seconds, 2 * wait_seconds, wait_seconds);
    return rbuf_finish(&b, ret, ret_len);
}

/* newc (the kernel's Documentation/driver-api/early-userspace/
 * buffer-format.rst, "070701"): a 110-byte header of "070701" and 13 fields
 * of 8 upper-case hex digits, the name with its NUL, padding to a multiple
 * of 4, the data, padding to a multiple of 4. Every entry starts 4-aligned,
 * so padding depends only on lengths. */
#define NEWC_HEADER_LEN 110

static void put_pad(rbuf *b)
{
    static const char zeros[3] = { 0 };
    rbuf_add(b, zeros, (4 - b->len % 4) % 4);
}

static void put_entry(rbuf *b, uint32_t ino, uint32_t mode, uint32_t nlink, const char *name,
                      const void *data, size_t size)
{
    size_t namesize = strlen(name) + 1;
    RB_ASSERT(size <= UINT32_MAX && namesize <= UINT32_MAX);
    size_t start = b->len;
    rbuf_printf(b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode,
                0u /* uid */, 0u /* gid */, nlink, 0u /* mtime */, (unsigned)size,
                0u /* devmajor */, 0u /* devminor */, 0u /* rdevmajor */, 0u /* rdevminor */,
                (unsigned)namesize, 0u /* check: only for "070702" */);
    RB_ASSERT(b->err || b->len - start == NEWC_HEADER_LEN);
    rbuf_add(b, name, namesize);
    put_pad(b);
    rbuf_add(b, data, size);
    put_pad(b);
}

int render_overlay(unsigned wait_seconds, uint8_t **ret, size_t *ret_len)
{
    _cleanup_free_ char *hook = NULL;
    size_t hook_len = 0;
    int r = render_overlay_hook(wait_seconds, &hook, &hook_len);
    if (r < 0) {
        return r;
    }
    static const char *const dirs[] = {
        "usr",
        "usr/lib",
        "usr/lib/dracut",
        "usr/lib/dracut/hooks",
        "usr/lib/dracut/hooks/initqueue",
        "usr/lib/dracut/hooks/initqueue/online",
    };
    rbuf b = { 0 };
    uint32_t ino = 1;
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        put_entry(&b, ino++, 0040755, 2, dirs[i], NULL, 0);
    }
    put_entry(&b, ino++, 0100755, 1, RENDER_OVERLAY_HOOK, hook, hook_len);
    /* The trailer: nlink 1 and everything else 0, as GNU cpio writes it. */
    put_entry(&b, 0, 0, 1, "TRAILER!!!", NULL, 0);

    char *out = NULL;
    size_t len = 0;
    r = rbuf_finish(&b, &out, &len);
    if (r < 0) {
        return r;
    }
    *ret = (uint8_t *)out;
    *ret_len = len;
    return 0;
}
