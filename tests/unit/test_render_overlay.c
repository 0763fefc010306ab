/* render/overlay: the newc archive's byte layout (walked here
 * and by GNU cpio -t / -i), and the hook's behaviour when dracut sources it,
 * with a fake `ip` on PATH. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "render/overlay.h"
#include "util.h"

static const char *const want_names[] = {
    "usr",
    "usr/lib",
    "usr/lib/dracut",
    "usr/lib/dracut/hooks",
    "usr/lib/dracut/hooks/initqueue",
    "usr/lib/dracut/hooks/initqueue/online",
    RENDER_OVERLAY_HOOK,
};

static uint32_t hex8(const uint8_t *p)
{
    char s[9];
    memcpy(s, p, 8);
    s[8] = '\0';
    for (int i = 0; i < 8; i++) {
        assert_true((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F'));
    }
    return (uint32_t)strtoul(s, NULL, 16);
}

/* Walks the archive as the kernel's init/initramfs.c does. */
static void test_layout(void **state)
{
    uint8_t *a = NULL;
    size_t len = 0;
    assert_int_equal(render_overlay(RENDER_OVERLAY_WAIT_DEFAULT, &a, &len), 0);
    char *hook = NULL;
    size_t hook_len = 0;
    assert_int_equal(render_overlay_hook(RENDER_OVERLAY_WAIT_DEFAULT, &hook, &hook_len), 0);

    size_t off = 0, n = 0;
    bool trailer = false;
    while (!trailer) {
        assert_int_equal(off % 4, 0);
        assert_true(len - off >= 110);
        assert_memory_equal(a + off, "070701", 6);
        const uint8_t *h = a + off + 6;
        uint32_t f[13];
        for (int i = 0; i < 13; i++) {
            f[i] = hex8(h + 8 * i);
        }
        uint32_t ino = f[0], mode = f[1], uid = f[2], gid = f[3], nlink = f[4], mtime = f[5],
                 size = f[6], namesize = f[11], check = f[12];
        assert_int_equal(uid, 0);
        assert_int_equal(gid, 0);
        assert_int_equal(mtime, 0);
        assert_int_equal(check, 0);
        for (int i = 7; i <= 10; i++) {
            assert_int_equal(f[i], 0); /* device numbers */
        }
        off += 110;
        assert_true(namesize >= 2 && len - off >= namesize);
        const char *name = (const char *)a + off;
        assert_int_equal(strnlen(name, namesize), namesize - 1);
        off += namesize;
        off += (4 - off % 4) % 4;
        if (streq(name, "TRAILER!!!")) {
            trailer = true;
            assert_int_equal(ino, 0);
            assert_int_equal(mode, 0);
            assert_int_equal(size, 0);
            break;
        }
        assert_true(n < ARRAY_SIZE(want_names));
        assert_string_equal(name, want_names[n]);
        assert_int_equal(ino, n + 1);
        /* Never "lib": a symlink to usr/lib on EL that a directory entry
         * would replace. Never an absolute name. */
        assert_false(streq(name, "lib") || strncmp(name, "lib/", 4) == 0);
        assert_true(name[0] != '/');
        if (n + 1 < ARRAY_SIZE(want_names)) {
            assert_int_equal(mode, 0040755);
            assert_int_equal(nlink, 2);
            assert_int_equal(size, 0);
        } else {
            assert_int_equal(mode, 0100755);
            assert_int_equal(nlink, 1);
            assert_int_equal(size, hook_len);
            assert_true(len - off >= size);
            assert_memory_equal(a + off, hook, hook_len);
            off += size;
            off += (4 - off % 4) % 4;
        }
        n++;
    }
    assert_int_equal(n, ARRAY_SIZE(want_names));
    assert_int_equal(off, len); /* nothing after the trailer's padding */

    /* Deterministic: the same bytes every time. */
    uint8_t *b = NULL;
    size_t blen = 0;
    assert_int_equal(render_overlay(RENDER_OVERLAY_WAIT_DEFAULT, &b, &blen), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(a, b, len);
    free(b);
    free(hook);
    free(a);
}

static void test_hook_text(void **state)
{
    char *hook = NULL;
    assert_int_equal(render_overlay_hook(60, &hook, NULL), 0);
    /* Sourced by dracut: an exit would end dracut's own shell. */
    if (strstr(hook, "exit")) {
        free(hook);
        fail_msg("the hook says exit");
    }
    assert_non_null(strstr(hook, "-lt 120 ]"));
    assert_non_null(strstr(hook, "after 60 s"));
    free(hook);
    hook = NULL;
    assert_int_equal(render_overlay_hook(0, &hook, NULL), -EINVAL);
    assert_int_equal(render_overlay_hook(RENDER_OVERLAY_WAIT_MAX + 1, &hook, NULL), -EINVAL);
    uint8_t *a = NULL;
    size_t len = 0;
    assert_int_equal(render_overlay(0, &a, &len), -EINVAL);
    assert_null(a);
    assert_null(hook);
}

/* A temporary directory holding the archive. */
typedef struct tmp {
    char dir[64];
    char archive[96];
} tmp;

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    return system(cmd);
}

static int setup_tmp(void **state)
{
    tmp *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->dir, sizeof(t->dir), "/tmp/rb-overlay-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->archive, sizeof(t->archive), "%s/overlay.img", t->dir);
    uint8_t *a = NULL;
    size_t len = 0;
    assert_int_equal(render_overlay(RENDER_OVERLAY_WAIT_DEFAULT, &a, &len), 0);
    write_file(t->archive, a, len, 0644);
    free(a);
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    tmp *t = *state;
    run("rm -rf '%s'", t->dir);
    free(t);
    return 0;
}

static bool have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* GNU cpio lists exactly our entries, in order. */
static void test_cpio_list(void **state)
{
    tmp *t = *state;
    if (!have("cpio")) {
        skip();
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cpio -t --quiet < '%s' 2>&1", t->archive);
    FILE *p = popen(cmd, "re");
    assert_non_null(p);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        if (n >= ARRAY_SIZE(want_names)) {
            fail_msg("unexpected cpio -t line: %s", line);
        }
        assert_string_equal(line, want_names[n]);
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, ARRAY_SIZE(want_names));
}

/* GNU cpio unpacks it: the hook has our text and mode 0755, the directories
 * exist, and nothing called lib does. */
static void test_cpio_extract(void **state)
{
    tmp *t = *state;
    if (!have("cpio")) {
        skip();
    }
    assert_int_equal(
        run("cd '%s' && mkdir root && cd root && cpio -i -d --quiet < '%s'", t->dir, t->archive),
        0);
    char path[256];
    snprintf(path, sizeof(path), "%s/root/%s", t->dir, RENDER_OVERLAY_HOOK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);

    char *hook = NULL;
    size_t hook_len = 0;
    assert_int_equal(render_overlay_hook(RENDER_OVERLAY_WAIT_DEFAULT, &hook, &hook_len), 0);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    char *got = malloc(hook_len + 2);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, hook_len + 1, f), hook_len);
    fclose(f);
    assert_memory_equal(got, hook, hook_len);
    free(got);
    free(hook);

    snprintf(path, sizeof(path), "%s/root/lib", t->dir);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/root/usr/lib/dracut/hooks/initqueue/online", t->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/* The hook as dracut runs it: sourced (`. hook $netif`) inside a function,
 * with `ip` answering as we say. It must come back to its caller (no exit),
 * leave no variables behind, query the interface it was given, and stop
 * waiting when the route is there, or after its bound when it never comes. */
static const char fake_ip[] =
    "#!/bin/sh\n"
    "echo \"$*\" >> \"$FAKE_LOG\"\n"
    "case \"$*\" in\n"
    "*'route show default'*)\n"
    "    n=$(grep -c 'route show' \"$FAKE_LOG\")\n"
    "    [ -n \"$FAKE_ROUTE\" ] && [ \"$n\" -gt \"${FAKE_ROUTE_AFTER:-0}\" ] && "
    "echo 'default via fe80::1 dev eth9 proto ra metric 100'\n"
    "    ;;\n"
    "*'addr show'*)\n"
    "    [ -n \"$FAKE_TENTATIVE\" ] && "
    "echo 'inet6 2001:db8::17/64 scope global tentative'\n"
    "    ;;\n"
    "esac\n"
    "exit 0\n";

static int source_hook(const tmp *t, const char *hook_path, const char *env, const char *out)
{
    /* source_all() in dracut-lib.sh: shifts the hook directory off its
     * arguments and runs `. "$f" "$@"`, so $1 is the interface under bash
     * (which passes the arguments) and dash (which keeps the function's). */
    return run("cd '%s' && env PATH='%s/bin':\"$PATH\" FAKE_LOG='%s/ip.log' %s sh -c '"
               "source_all() { rb_f=$1; shift; . \"$rb_f\" \"$@\"; unset rb_f; }; "
               "source_all %s eth9; "
               "echo \"back n=${rb_wait_n-unset} if=${rb_wait_if-unset} say=$(command -v "
               "rb_wait_say || echo unset)\"' > '%s' 2>&1",
               t->dir, t->dir, t->dir, env, hook_path, out);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    char *buf = calloc(1, 8192);
    assert_non_null(buf);
    assert_true(fread(buf, 1, 8191, f) < 8191);
    fclose(f);
    return buf;
}

/* The seconds in the hook's "IPv6 ready on eth9 after S s" line; -1 when
 * there is none. */
static double ready_after(const char *out)
{
    const char *p = strstr(out, "rackboot: IPv6 ready on eth9 after ");
    return p ? strtod(p + strlen("rackboot: IPv6 ready on eth9 after "), NULL) : -1.0;
}

static void test_hook_sourced(void **state)
{
    tmp *t = *state;
    if (!have("sh")) {
        skip();
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/bin", t->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/bin/ip", t->dir);
    write_file(path, fake_ip, strlen(fake_ip), 0755);

    char *hook = NULL;
    size_t hook_len = 0;
    assert_int_equal(render_overlay_hook(1, &hook, &hook_len), 0);
    char hook_path[256];
    snprintf(hook_path, sizeof(hook_path), "%s/05-rackboot-wait-ipv6.sh", t->dir);
    write_file(hook_path, hook, hook_len, 0644);
    free(hook);
    assert_int_equal(run("sh -n '%s'", hook_path), 0);

    char out[256], log[256];
    snprintf(out, sizeof(out), "%s/out", t->dir);
    snprintf(log, sizeof(log), "%s/ip.log", t->dir);

    /* Route present, DAD done: returns at once, asked about eth9, and says
     * how long it waited. */
    assert_int_equal(source_hook(t, hook_path, "FAKE_ROUTE=1", out), 0);
    char *s = slurp(out);
    double waited = ready_after(s); /* 0.0 s on an idle machine */
    assert_true(waited >= 0.0 && waited < 30.0);
    assert_non_null(strstr(s, " s (default route, no tentative address)\n"
                              "back n=unset if=unset say=unset\n"));
    free(s);
    s = slurp(log);
    assert_non_null(strstr(s, "-6 route show default dev eth9\n"));
    assert_non_null(strstr(s, "-6 addr show dev eth9 tentative\n"));
    free(s);

    /* The route comes at the second poll: says it waits, then the time it
     * waited by the clock (one half-second sleep at least). */
    assert_int_equal(run("rm -f '%s'", log), 0);
    assert_int_equal(source_hook(t, hook_path, "FAKE_ROUTE=1 FAKE_ROUTE_AFTER=1", out), 0);
    s = slurp(out);
    assert_non_null(strstr(s, "rackboot: waiting for IPv6 on eth9 (default route, no tentative "
                              "address), at most 1 s\n"));
    waited = ready_after(s);
    assert_true(waited >= 0.5 && waited < 30.0);
    free(s);

    /* Route present but an address still tentative, then never a route:
     * says it waits and for how long at most, gives up after its bound (1 s
     * here), warns, and still returns. */
    assert_int_equal(source_hook(t, hook_path, "FAKE_ROUTE=1 FAKE_TENTATIVE=1", out), 0);
    s = slurp(out);
    assert_string_equal(s, "rackboot: waiting for IPv6 on eth9 (default route, no tentative "
                           "address), at most 1 s\n"
                           "rackboot: no IPv6 default route on eth9 after 1 s\n"
                           "back n=unset if=unset say=unset\n");
    free(s);
    assert_int_equal(run("rm -f '%s'", log), 0);
    assert_int_equal(source_hook(t, hook_path, "", out), 0);
    s = slurp(out);
    assert_non_null(strstr(s, "no IPv6 default route on eth9 after 1 s\n"));
    free(s);
    s = slurp(log);
    /* Two polls for one second, 0.5 s apart. */
    size_t polls = 0;
    for (const char *p = s; (p = strstr(p, "route show default")); p++) {
        polls++;
    }
    assert_int_equal(polls, 2);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_hook_text),
        cmocka_unit_test_setup_teardown(test_cpio_list, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cpio_extract, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_hook_sourced, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
