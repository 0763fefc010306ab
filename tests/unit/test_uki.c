/* rack-agent/uki/: the stub header parser and the section layout on
 * vectors, the content key, and a UKI built from Debian's
 * linuxx64.efi.stub read back by binutils (objdump -h for the section
 * table, objcopy -O binary for each section's bytes). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "command.h"
#include "fileio.h"
#include "uki/uki.h"
#include "util.h"

/* objdump -p of Debian 12's linuxx64.efi.stub (systemd-boot-efi 252.39),
 * its "Windows specific" block as binutils 2.40 prints it. */
static const char stub_objdump_p[] = "Magic\t\t\t020b\t(PE32+)\n"
                                     "MajorLinkerVersion\t2\n"
                                     "AddressOfEntryPoint\t0000000000004000\n"
                                     "BaseOfCode\t\t0000000000004000\n"
                                     "ImageBase\t\t0000000000000000\n"
                                     "SectionAlignment\t00000200\n"
                                     "FileAlignment\t\t00000200\n"
                                     "SizeOfImage\t\t00019300\n"
                                     "SizeOfHeaders\t\t00000400\n"
                                     "Subsystem\t\t0000000a\t(EFI application)\n";

static void test_stub_info_parse(void **state)
{
    (void)state;
    uki_stub_info s;
    assert_int_equal(uki_stub_info_parse(stub_objdump_p, &s), 0);
    assert_int_equal(s.image_base, 0);
    assert_int_equal(s.section_alignment, 0x200);
    assert_int_equal(s.size_of_image, 0x19300);

    /* a key as a prefix of another ("SizeOfImageX") is not the key */
    assert_int_equal(uki_stub_info_parse("ImageBase\t0\nSectionAlignment\t1000\n"
                                         "SizeOfImageX\t10\n",
                                         &s),
                     -EINVAL);
    /* missing, zero, not a power of two, not hex */
    assert_int_equal(uki_stub_info_parse("ImageBase\t0\nSectionAlignment\t1000\n", &s), -EINVAL);
    assert_int_equal(
        uki_stub_info_parse("ImageBase\t0\nSectionAlignment\t1000\nSizeOfImage\t0\n", &s), -EINVAL);
    assert_int_equal(
        uki_stub_info_parse("ImageBase\t0\nSectionAlignment\t300\nSizeOfImage\t10\n", &s), -EINVAL);
    assert_int_equal(
        uki_stub_info_parse("ImageBase\t0\nSectionAlignment\t1000\nSizeOfImage\tzz\n", &s),
        -EINVAL);
    assert_int_equal(uki_stub_info_parse("", &s), -EINVAL);
    assert_int_equal(uki_stub_info_parse(NULL, &s), -EINVAL);
}

static void test_layout(void **state)
{
    (void)state;
    const uki_stub_info stub = { .image_base = 0,
                                 .section_alignment = 0x200,
                                 .size_of_image = 0x19300 };
    const uint64_t sizes[UKI_N_SECTIONS] = {
        [UKI_OSREL] = 40,
        [UKI_CMDLINE] = 0x1000,
        [UKI_LINUX] = 8247232,
        [UKI_INITRD] = 1,
    };
    uki_layout l;
    assert_int_equal(uki_layout_plan(&stub, sizes, &l), 0);
    /* behind the stub's image, page-aligned (4 KiB beats its 512 B) */
    assert_int_equal(l.vma[UKI_OSREL], 0x1a000);
    assert_int_equal(l.vma[UKI_CMDLINE], 0x1b000);
    assert_int_equal(l.vma[UKI_LINUX], 0x1c000);
    assert_int_equal(l.vma[UKI_INITRD], 0x1c000 + ((8247232 + 4095) / 4096) * 4096);
    for (size_t i = 0; i + 1 < UKI_N_SECTIONS; i++) {
        assert_true(l.vma[i] + sizes[i] <= l.vma[i + 1]);
        assert_int_equal(l.vma[i] % 4096, 0);
    }

    /* a stub with a larger alignment and an image base */
    const uki_stub_info big = { .image_base = 0x140000000ULL,
                                .section_alignment = 0x10000,
                                .size_of_image = 0x10000 };
    assert_int_equal(uki_layout_plan(&big, sizes, &l), 0);
    assert_int_equal(l.vma[UKI_OSREL], 0x140010000ULL);
    assert_int_equal(l.vma[UKI_CMDLINE], 0x140020000ULL);
    assert_int_equal(l.vma[UKI_LINUX], 0x140030000ULL);

    /* PE's relative addresses are 32-bit */
    const uint64_t huge[UKI_N_SECTIONS] = { 1, 1, 3ULL << 30, 2ULL << 30 };
    assert_int_equal(uki_layout_plan(&stub, huge, &l), -EOVERFLOW);
    const uint64_t over[UKI_N_SECTIONS] = { 1, 1, 1, (uint64_t)UINT32_MAX + 1 };
    assert_int_equal(uki_layout_plan(&stub, over, &l), -EOVERFLOW);
}

static void test_key(void **state)
{
    (void)state;
    const char *const both[] = { "\"aa11\"", "\"bb22\"" };
    const char *const swapped[] = { "\"bb22\"", "\"aa11\"" };
    uki_key_input in = { .stub = "\"5d1c-1000-77\"",
                         .kernel = "\"e3b0c442\"",
                         .initrds = both,
                         .n_initrds = 2,
                         .cmdline = "ip=[2001:db8::17]::[2001:db8::1]:64",
                         .osrel = "ID=rackboot\n" };
    char a[SHA256_HEX_LEN + 1], b[SHA256_HEX_LEN + 1];
    assert_int_equal(uki_key(&in, a), 0);
    assert_int_equal(strlen(a), SHA256_HEX_LEN);
    assert_int_equal(uki_key(&in, b), 0);
    assert_string_equal(a, b); /* deterministic */

    /* every input counts */
    uki_key_input x = in;
    x.cmdline = "ip=[2001:db8::18]::[2001:db8::1]:64";
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x = in;
    x.initrds = swapped;
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x = in;
    x.n_initrds = 1;
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x = in;
    x.stub = "\"5d1c-1000-78\"";
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x = in;
    x.kernel = "\"e3b0c443\"";
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x = in;
    x.osrel = NULL;
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    /* the boundary between command line and osrel is part of the key */
    x = in;
    x.cmdline = "ip=[2001:db8::17]::[2001:db8::1]:64ID=rackboot\n";
    x.osrel = "";
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    /* validators run together differently are different inputs */
    x = in;
    x.stub = "\"5d1c-1000-77\"\"e3b0";
    x.kernel = "c442\"";
    assert_int_equal(uki_key(&x, b), 0);
    assert_string_not_equal(a, b);
    x.kernel = NULL;
    assert_int_equal(uki_key(&x, b), -EINVAL);
}

/* ---- a real UKI, read back by binutils --------------------------------------- */

typedef struct section {
    char name[16];
    uint64_t size, vma, offset;
    unsigned align_log2;
    char flags[128];
} section;

/* The section table as objdump -h prints it: an "Idx Name Size VMA LMA
 * File off Algn" line, then one of flags. */
static size_t read_sections(const char *path, section *out, size_t max)
{
    char *argv[] = { RB_UNCONST("objdump"), RB_UNCONST("-h"), RB_UNCONST(path), NULL };
    char *text = NULL, *err = NULL;
    int r = command_run(argv, &text, &err);
    if (r < 0) {
        fail_msg("objdump -h %s: %s", path, err ? err : "?");
    }
    size_t n = 0;
    char *save = NULL;
    section *last = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        section s;
        unsigned idx;
        uint64_t lma;
        if (sscanf(line, " %u %15s %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " 2**%u", &idx,
                   s.name, &s.size, &s.vma, &lma, &s.offset, &s.align_log2) == 7 &&
            n < max) {
            s.flags[0] = '\0';
            out[n] = s;
            last = &out[n++];
        } else if (last && strstr(line, "CONTENTS")) {
            snprintf(last->flags, sizeof(last->flags), "%s", line + strspn(line, " "));
            last = NULL;
        }
    }
    free(text);
    return n;
}

static const section *find(const section *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, name) == 0) {
            return &s[i];
        }
    }
    return NULL;
}

/* The bytes of one section, by objcopy -O binary --only-section. */
static void *section_bytes(const char *uki, const char *dir, const char *name, size_t *len)
{
    char *out = NULL, *only = NULL, *err = NULL;
    assert_true(asprintf(&out, "%s/section%s", dir, name) > 0);
    assert_true(asprintf(&only, "--only-section=%s", name) > 0);
    char *argv[] = { RB_UNCONST("objcopy"),
                     RB_UNCONST("-O"),
                     RB_UNCONST("binary"),
                     only,
                     RB_UNCONST(uki),
                     out,
                     NULL };
    if (command_run(argv, NULL, &err) < 0) {
        fail_msg("objcopy %s: %s", name, err ? err : "?");
    }
    void *data = NULL;
    assert_int_equal(fileio_read_all(out, (size_t)64 << 20, &data, len), 0);
    unlink(out);
    free(out);
    free(only);
    return data;
}

static void fill(const char *path, size_t len, unsigned seed)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (uint8_t)(seed >> 16);
    }
    assert_int_equal(fileio_write_atomic(path, b, len, 0644), 0);
    free(b);
}

static void test_build_real_stub(void **state)
{
    (void)state;
    if (access(UKI_STUB_DEFAULT, R_OK) < 0) {
        skip(); /* systemd-boot-efi not installed (deploy/install-deps.sh has it) */
    }
    char dir[] = "/tmp/rackboot-test-uki.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char kernel[128], i1[128], i2[128], uki[128];
    snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
    snprintf(i1, sizeof(i1), "%s/initrd.img", dir);
    snprintf(i2, sizeof(i2), "%s/overlay.img", dir);
    snprintf(uki, sizeof(uki), "%s/52-54-00-12-34-56.efi", dir);
    const size_t kernel_len = 3 * 1024 * 1024 + 17, i1_len = 1024 * 1024 + 3, i2_len = 5000;
    fill(kernel, kernel_len, 1);
    fill(i1, i1_len, 2);
    fill(i2, i2_len, 3);
    const char *initrds[] = { i1, i2 };
    const char *cmdline = "console=ttyS0 ip=[2001:db8:1::17]::[2001:db8:1::1]:64::eth0:none "
                          "inst.ks=http://[2001:db8:1::1]/ks/abc?token=0123";
    const char *osrel = "NAME=\"rackboot install\"\nID=rackboot\n";
    uki_parts p = { .stub = UKI_STUB_DEFAULT,
                    .kernel = kernel,
                    .initrds = initrds,
                    .n_initrds = 2,
                    .cmdline = cmdline,
                    .osrel = osrel };
    char *err = NULL;
    int r = uki_build(&p, dir, uki, &err);
    if (r < 0) {
        fail_msg("uki_build: %s", err ? err : "?");
    }

    section s[32];
    size_t n = read_sections(uki, s, ARRAY_SIZE(s));
    /* the stub's own sections are still there */
    assert_non_null(find(s, n, ".text"));
    assert_non_null(find(s, n, ".sbat"));
    const size_t want_len[UKI_N_SECTIONS] = {
        [UKI_OSREL] = strlen(osrel),
        [UKI_CMDLINE] = strlen(cmdline),
        [UKI_LINUX] = kernel_len,
        [UKI_INITRD] = (i1_len + 3) / 4 * 4 + i2_len,
    };
    uint64_t stub_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].name[0] == '.' && strcmp(s[i].name, ".osrel") && strcmp(s[i].name, ".cmdline") &&
            strcmp(s[i].name, ".linux") && strcmp(s[i].name, ".initrd") &&
            s[i].vma + s[i].size > stub_end) {
            stub_end = s[i].vma + s[i].size;
        }
    }
    uint64_t prev_end = stub_end;
    for (size_t i = 0; i < UKI_N_SECTIONS; i++) {
        const section *x = find(s, n, uki_section_names[i]);
        if (!x) {
            fail_msg("%s missing from %s", uki_section_names[i], uki);
        }
        /* objdump's size is the section's size rounded to the file
         * alignment at most */
        assert_true(x->size >= want_len[i] && x->size < want_len[i] + 512);
        assert_int_equal(x->vma % 4096, 0);
        assert_true(x->vma >= prev_end); /* in order, no overlap */
        prev_end = x->vma + x->size;
        assert_non_null(strstr(x->flags, "ALLOC"));
        assert_non_null(strstr(x->flags, "LOAD"));
        assert_non_null(strstr(x->flags, "READONLY"));
        assert_int_equal(x->offset % 512, 0);
    }

    /* every section holds exactly what went in (objcopy -O binary keeps
     * the padding: compare the prefix, the rest is zeros) */
    size_t len;
    char *osrel_b = section_bytes(uki, dir, ".osrel", &len);
    assert_true(len >= strlen(osrel));
    assert_memory_equal(osrel_b, osrel, strlen(osrel));
    free(osrel_b);
    char *cmd_b = section_bytes(uki, dir, ".cmdline", &len);
    assert_true(len >= strlen(cmdline));
    assert_memory_equal(cmd_b, cmdline, strlen(cmdline));
    for (size_t i = strlen(cmdline); i < len; i++) {
        assert_int_equal(cmd_b[i], 0); /* the stub reads up to the first NUL */
    }
    free(cmd_b);
    void *want = NULL, *got;
    size_t want_n;
    got = section_bytes(uki, dir, ".linux", &len);
    assert_int_equal(fileio_read_all(kernel, (size_t)64 << 20, &want, &want_n), 0);
    assert_true(len >= want_n);
    assert_memory_equal(got, want, want_n);
    free(got);
    free(want);
    got = section_bytes(uki, dir, ".initrd", &len);
    void *w1 = NULL, *w2 = NULL;
    size_t n1, n2;
    assert_int_equal(fileio_read_all(i1, (size_t)64 << 20, &w1, &n1), 0);
    assert_int_equal(fileio_read_all(i2, (size_t)64 << 20, &w2, &n2), 0);
    /* concatenated in order, the second from a multiple of 4 (i1_len is
     * odd on purpose), zeros between */
    size_t at = (n1 + 3) / 4 * 4;
    assert_true(at > n1 && len >= at + n2);
    assert_memory_equal(got, w1, n1);
    for (size_t i = n1; i < at; i++) {
        assert_int_equal(((char *)got)[i], 0);
    }
    assert_memory_equal((char *)got + at, w2, n2);
    free(got);
    free(w1);
    free(w2);

    /* SizeOfImage covers the added sections: the firmware loads them */
    char *argv[] = { RB_UNCONST("objdump"), RB_UNCONST("-p"), uki, NULL };
    char *text = NULL;
    assert_int_equal(command_run(argv, &text, &err), 0);
    uki_stub_info info;
    assert_int_equal(uki_stub_info_parse(text, &info), 0);
    free(text);
    const section *last = find(s, n, ".initrd");
    assert_true(info.image_base + info.size_of_image >= last->vma + want_len[UKI_INITRD]);

    /* failures say what failed, and leave nothing at the output path */
    unlink(uki);
    const char *missing[] = { i1, "/nonexistent/initrd" };
    p.initrds = missing;
    free(err);
    err = NULL;
    assert_true(uki_build(&p, dir, uki, &err) < 0);
    assert_non_null(strstr(err, "/nonexistent/initrd"));
    assert_int_equal(access(uki, F_OK), -1);
    free(err);
    err = NULL;
    p.initrds = initrds;
    p.stub = "/nonexistent/linuxx64.efi.stub";
    assert_int_equal(uki_build(&p, dir, uki, &err), -ENOENT);
    assert_non_null(strstr(err, "systemd-boot-efi"));
    free(err);
    err = NULL;
    p.stub = kernel; /* not a PE image */
    assert_true(uki_build(&p, dir, uki, &err) < 0);
    assert_non_null(err);
    assert_int_equal(access(uki, F_OK), -1);
    free(err);

    unlink(kernel);
    unlink(i1);
    unlink(i2);
    assert_int_equal(rmdir(dir), 0); /* no temporary left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stub_info_parse),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_build_real_stub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
