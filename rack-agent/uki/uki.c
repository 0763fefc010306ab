#include "uki/uki.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "errmsg.h"
#include "fileio.h"
#include "util.h"

const char *const uki_section_names[UKI_N_SECTIONS] = {
    [UKI_OSREL] = ".osrel",
    [UKI_CMDLINE] = ".cmdline",
    [UKI_LINUX] = ".linux",
    [UKI_INITRD] = ".initrd",
};

#define UKI_PAGE 4096u

/* The hex value after `key` at the start of a line of objdump -p's text
 * ("SizeOfImage\t\t00019300"). */
static int header_value(const char *text, const char *key, uint64_t *ret)
{
    size_t klen = strlen(key);
    for (const char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, klen) != 0 || (line[klen] != '\t' && line[klen] != ' ')) {
            continue;
        }
        const char *v = line + klen + strspn(line + klen, " \t");
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 16);
        if (errno || end == v || (*end != '\n' && *end != '\0' && *end != ' ' && *end != '\t')) {
            return -EINVAL;
        }
        *ret = x;
        return 0;
    }
    return -EINVAL;
}

int uki_stub_info_parse(const char *objdump_p, uki_stub_info *ret)
{
    uki_stub_info s;
    if (!objdump_p || header_value(objdump_p, "ImageBase", &s.image_base) < 0 ||
        header_value(objdump_p, "SectionAlignment", &s.section_alignment) < 0 ||
        header_value(objdump_p, "SizeOfImage", &s.size_of_image) < 0) {
        return -EINVAL;
    }
    if (s.section_alignment == 0 || (s.section_alignment & (s.section_alignment - 1)) != 0 ||
        s.size_of_image == 0) {
        return -EINVAL;
    }
    *ret = s;
    return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

int uki_layout_plan(const uki_stub_info *stub, const uint64_t sizes[UKI_N_SECTIONS],
                    uki_layout *ret)
{
    uint64_t align = stub->section_alignment > UKI_PAGE ? stub->section_alignment : UKI_PAGE;
    /* Relative virtual addresses: PE keeps them, and SizeOfImage, in 32 bits. */
    uint64_t rva = align_up(stub->size_of_image, align);
    uki_layout l;
    for (size_t i = 0; i < UKI_N_SECTIONS; i++) {
        if (sizes[i] > UINT32_MAX || rva > UINT32_MAX - sizes[i] - align) {
            return -EOVERFLOW;
        }
        l.vma[i] = stub->image_base + rva;
        rva = align_up(rva + sizes[i], align);
    }
    *ret = l;
    return 0;
}

/* Appends the file at `path` to fd. */
static int append_file(int fd, const char *path, uint64_t *total, char **ret_error)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        int r = negative_errno();
        return errmsg_fail(ret_error, r, "%s: %s", path, errstr(r));
    }
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, fd, NULL, (size_t)1 << 30, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int r = negative_errno();
            close(in);
            return errmsg_fail(ret_error, r, "copying %s: %s", path, errstr(r));
        }
        if (n == 0) {
            break;
        }
        *total += (uint64_t)n;
    }
    close(in);
    return 0;
}

static int file_size(const char *path, uint64_t *ret, char **ret_error)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int r = negative_errno();
        return errmsg_fail(ret_error, r, "%s: %s", path, errstr(r));
    }
    if (!S_ISREG(st.st_mode)) {
        return errmsg_fail(ret_error, -EINVAL, "%s: not a regular file", path);
    }
    *ret = (uint64_t)st.st_size;
    return 0;
}

static int read_stub_info(const char *stub, uki_stub_info *ret, char **ret_error)
{
    if (access(stub, R_OK) < 0) {
        int r = negative_errno();
        return errmsg_fail(ret_error, r, "UEFI stub %s: %s (install systemd-boot-efi)", stub,
                           errstr(r));
    }
    char *argv[] = { RB_UNCONST("objdump"), RB_UNCONST("-p"), RB_UNCONST(stub), NULL };
    char *text = NULL;
    int r = command_run(argv, &text, ret_error);
    if (r < 0) {
        return r;
    }
    r = uki_stub_info_parse(text, ret);
    free(text);
    if (r < 0) {
        return errmsg_fail(ret_error, r, "%s: not a PE image objdump understands", stub);
    }
    return 0;
}

int uki_build(const uki_parts *p, const char *tmpdir, const char *out, char **ret_error)
{
    if (!p || !p->stub || !p->kernel || !p->cmdline || !p->osrel || !out ||
        (p->n_initrds && !p->initrds)) {
        return errmsg_fail(ret_error, -EINVAL, "uki_build: missing part");
    }
    if (strchr(p->cmdline, '\n')) {
        return errmsg_fail(ret_error, -EINVAL, "the command line has a newline");
    }
    if (!tmpdir) {
        tmpdir = getenv("TMPDIR");
    }
    if (strempty(tmpdir)) {
        tmpdir = "/tmp";
    }
    uki_stub_info stub;
    int r = read_stub_info(p->stub, &stub, ret_error);
    if (r < 0) {
        return r;
    }

    char *dir = NULL, *f_osrel = NULL, *f_cmdline = NULL, *f_initrd = NULL, *tmp_out = NULL;
    char *vma[UKI_N_SECTIONS] = { 0 }, *add[UKI_N_SECTIONS] = { 0 }, *flags[UKI_N_SECTIONS] = { 0 };
    uint64_t sizes[UKI_N_SECTIONS] = {
        [UKI_OSREL] = strlen(p->osrel),
        [UKI_CMDLINE] = strlen(p->cmdline),
    };
    const char *files[UKI_N_SECTIONS] = { 0 };
    uki_layout layout;
    /* objcopy, then --add-section S=FILE --change-section-vma S=VMA
     * --set-section-flags S=... for each section, then STUB OUT. */
    char *argv[1 + 6 * UKI_N_SECTIONS + 3];
    size_t a = 0;
    int fd = -1;
    if (asprintf(&dir, "%s/rackboot-uki.XXXXXX", tmpdir) < 0) {
        return -ENOMEM;
    }
    if (!mkdtemp(dir)) {
        r = negative_errno();
        errmsg_fail(ret_error, r, "cannot make a directory in %s: %s", tmpdir, errstr(r));
        free(dir);
        return r;
    }
    if (asprintf(&f_osrel, "%s/osrel", dir) < 0 || asprintf(&f_cmdline, "%s/cmdline", dir) < 0 ||
        asprintf(&f_initrd, "%s/initrd", dir) < 0 || asprintf(&tmp_out, "%s.tmp", out) < 0) {
        r = -ENOMEM;
        goto out;
    }

    r = fileio_write_atomic(f_osrel, p->osrel, sizes[UKI_OSREL], 0600);
    if (r >= 0) {
        r = fileio_write_atomic(f_cmdline, p->cmdline, sizes[UKI_CMDLINE], 0600);
    }
    if (r < 0) {
        errmsg_fail(ret_error, r, "cannot write in %s: %s", dir, errstr(r));
        goto out;
    }
    r = file_size(p->kernel, &sizes[UKI_LINUX], ret_error);
    if (r < 0) {
        goto out;
    }
    fd = open(f_initrd, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = negative_errno();
        errmsg_fail(ret_error, r, "cannot make %s: %s", f_initrd, errstr(r));
        goto out;
    }
    for (size_t i = 0; i < p->n_initrds; i++) {
        /* Each archive starts at a multiple of 4 bytes, zeros between: the
         * kernel's initramfs unpacker skips such padding, but takes a
         * newc header right after a gzip stream's odd end for junk
         * ("invalid magic at start of compressed archive"). */
        static const uint8_t zeros[UKI_INITRD_ALIGN];
        size_t pad = (size_t)(align_up(sizes[UKI_INITRD], UKI_INITRD_ALIGN) - sizes[UKI_INITRD]);
        if (pad > 0) {
            r = fileio_write_all(fd, zeros, pad);
            if (r < 0) {
                errmsg_fail(ret_error, r, "writing %s: %s", f_initrd, errstr(r));
                goto out;
            }
            sizes[UKI_INITRD] += pad;
        }
        r = append_file(fd, p->initrds[i], &sizes[UKI_INITRD], ret_error);
        if (r < 0) {
            goto out;
        }
    }
    close(fd);
    fd = -1;

    r = uki_layout_plan(&stub, sizes, &layout);
    if (r < 0) {
        errmsg_fail(ret_error, r,
                    "kernel and initrd too large for a PE image (%" PRIu64 " + %" PRIu64 " bytes)",
                    sizes[UKI_LINUX], sizes[UKI_INITRD]);
        goto out;
    }
    files[UKI_OSREL] = f_osrel;
    files[UKI_CMDLINE] = f_cmdline;
    files[UKI_LINUX] = p->kernel;
    files[UKI_INITRD] = f_initrd;
    argv[a++] = RB_UNCONST("objcopy");
    for (size_t i = 0; i < UKI_N_SECTIONS; i++) {
        const char *s = uki_section_names[i];
        if (asprintf(&add[i], "%s=%s", s, files[i]) < 0 ||
            asprintf(&vma[i], "%s=0x%" PRIx64, s, layout.vma[i]) < 0 ||
            asprintf(&flags[i], "%s=alloc,load,readonly,data", s) < 0) {
            r = -ENOMEM;
            goto out;
        }
        argv[a++] = RB_UNCONST("--add-section");
        argv[a++] = add[i];
        argv[a++] = RB_UNCONST("--change-section-vma");
        argv[a++] = vma[i];
        argv[a++] = RB_UNCONST("--set-section-flags");
        argv[a++] = flags[i];
    }
    argv[a++] = RB_UNCONST(p->stub);
    argv[a++] = tmp_out;
    argv[a] = NULL;
    r = command_run(argv, NULL, ret_error);
    if (r < 0) {
        unlink(tmp_out);
        goto out;
    }
    if (rename(tmp_out, out) < 0) {
        r = negative_errno();
        errmsg_fail(ret_error, r, "cannot rename %s to %s: %s", tmp_out, out, errstr(r));
        unlink(tmp_out);
        goto out;
    }
    r = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    for (size_t i = 0; i < UKI_N_SECTIONS; i++) {
        free(add[i]);
        free(vma[i]);
        free(flags[i]);
    }
    if (f_osrel) {
        unlink(f_osrel);
    }
    if (f_cmdline) {
        unlink(f_cmdline);
    }
    if (f_initrd) {
        unlink(f_initrd);
    }
    rmdir(dir);
    free(dir);
    free(f_osrel);
    free(f_cmdline);
    free(f_initrd);
    free(tmp_out);
    return r;
}

/* A string into the key, its length first: no two inputs hash the same
 * bytes. NULL counts as absent, apart from "". */
static int key_string(sha256_ctx *c, const char *s)
{
    uint64_t len = s ? strlen(s) : UINT64_MAX;
    int r = sha256_update(c, &len, sizeof(len));
    if (r >= 0 && s) {
        r = sha256_update(c, s, strlen(s));
    }
    return r;
}

int uki_key(const uki_key_input *in, char ret_hex[SHA256_HEX_LEN + 1])
{
    if (!in->stub || !in->kernel || !in->cmdline || (in->n_initrds && !in->initrds)) {
        return -EINVAL;
    }
    sha256_ctx *c = sha256_new();
    if (!c) {
        return -ENOMEM;
    }
    static const char tag[] = "rackboot-uki-v2";
    uint64_t n_initrds = in->n_initrds;
    int r = sha256_update(c, tag, sizeof(tag));
    if (r >= 0) {
        r = key_string(c, in->stub);
    }
    if (r >= 0) {
        r = key_string(c, in->kernel);
    }
    if (r >= 0) {
        r = sha256_update(c, &n_initrds, sizeof(n_initrds));
    }
    for (size_t i = 0; r >= 0 && i < in->n_initrds; i++) {
        r = key_string(c, in->initrds[i]);
    }
    if (r >= 0) {
        r = key_string(c, in->cmdline);
    }
    if (r >= 0) {
        r = key_string(c, in->osrel);
    }
    uint8_t d[SHA256_LEN];
    if (r >= 0) {
        r = sha256_final(c, d);
    }
    sha256_free(c);
    if (r >= 0) {
        sha256_to_hex(d, ret_hex);
    }
    return r < 0 ? r : 0;
}
