#include "profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "util.h"

static const struct {
    const char *name;
    const char *file;
    const char *path;
} kinds[] = {
    [IMAGE_KERNEL] = { "kernel", "vmlinuz", "vmlinuz" },
    [IMAGE_INITRD] = { "initrd", "initrd.img", "initrd.img" },
    [IMAGE_STAGE2] = { "stage2", "squashfs.img", "LiveOS/squashfs.img" },
    [IMAGE_OTHER] = { "other", NULL, NULL },
    [IMAGE_DISK] = { "disk", "disk.img", "disk.img" },
};

static const char *const profile_kinds[] = {
    [PROFILE_INSTALL] = "install",
    [PROFILE_IMAGE] = "image",
    [PROFILE_DEBIAN_INSTALLER] = "debian-installer",
};

const char *profile_kind_to_string(profile_kind k)
{
    return (size_t)k < ARRAY_SIZE(profile_kinds) ? profile_kinds[k] : "unknown";
}

int profile_kind_from_string(const char *s, profile_kind *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(profile_kinds); i++) {
        if (streq(s, profile_kinds[i])) {
            *ret = (profile_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool profile_kind_ends_on_first_boot(profile_kind k)
{
    switch (k) {
    case PROFILE_IMAGE:
    case PROFILE_DEBIAN_INSTALLER:
        return true;
    case PROFILE_INSTALL:
        break;
    }
    return false;
}

bool model_ssh_key_valid(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > MODEL_SSH_KEY_MAX || s[0] == ' ' || s[len - 1] == ' ') {
        return false;
    }
    for (const char *c = s; *c; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            return false;
        }
    }
    return strchr(s, ' ') != NULL;
}

bool model_user_data_is_mime(const char *s)
{
    return s &&
           (strncasecmp(s, "Content-Type:", 13) == 0 || strncasecmp(s, "MIME-Version:", 13) == 0);
}

const char *image_kind_to_string(image_kind k)
{
    return (size_t)k < ARRAY_SIZE(kinds) ? kinds[k].name : "unknown";
}

int image_kind_from_string(const char *s, image_kind *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (strcasecmp(s, kinds[i].name) == 0) {
            *ret = (image_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *image_kind_file(image_kind k)
{
    return (size_t)k < ARRAY_SIZE(kinds) ? kinds[k].file : NULL;
}

const char *image_kind_path(image_kind k)
{
    return (size_t)k < ARRAY_SIZE(kinds) ? kinds[k].path : NULL;
}

image_kind image_kind_of_path(const char *path)
{
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (kinds[i].path && streq(kinds[i].path, path)) {
            return (image_kind)i;
        }
    }
    return IMAGE_OTHER;
}

const char *model_image_path(const model_image *img)
{
    const char *p = image_kind_path(img->kind);
    return p ? p : img->name;
}

const model_image *model_profile_image(const model_profile *p, image_kind kind)
{
    for (size_t i = 0; i < p->n_images; i++) {
        if (p->images[i].kind == kind) {
            return &p->images[i];
        }
    }
    return NULL;
}

/* Writes the reason (if the caller wants one) and returns `r`. */
__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t why_len, int r,
                                                      const char *fmt, ...)
{
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return r;
}

bool model_file_name_valid(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    return len > 0 && len <= MODEL_FILE_NAME_MAX && n[0] != '.' &&
           strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") == len;
}

static int check_ssh_keys(const model_profile *p, char *why, size_t why_len);
static int check_root_device(const model_profile *p, char *why, size_t why_len);

int model_profile_check(const model_profile *p, char *why, size_t why_len)
{
    if (!p || !p->name || !fleet_name_valid(p->name)) {
        return fail(why, why_len, -EINVAL, "invalid profile name");
    }
    if (p->cmdline && strlen(p->cmdline) > MODEL_CMDLINE_MAX) {
        return fail(why, why_len, -EINVAL, "profile %s: cmdline too long", p->name);
    }
    if (p->kickstart && strlen(p->kickstart) > MODEL_TEMPLATE_MAX) {
        return fail(why, why_len, -EINVAL, "profile %s: kickstart template too long", p->name);
    }
    if (p->ip != IP_MODE_STATIC && p->ip != IP_MODE_DHCP6) {
        return fail(why, why_len, -EINVAL, "profile %s: invalid ip mode", p->name);
    }
    if (p->uefi != UEFI_BOOT_IPXE && p->uefi != UEFI_BOOT_UKI) {
        return fail(why, why_len, -EINVAL, "profile %s: invalid uefi_boot", p->name);
    }
    if (p->n_images > MODEL_IMAGES_MAX || (p->n_images > 0 && !p->images)) {
        return fail(why, why_len, -EINVAL, "profile %s: too many images", p->name);
    }
    if (p->kind != PROFILE_INSTALL && p->kind != PROFILE_IMAGE &&
        p->kind != PROFILE_DEBIAN_INSTALLER) {
        return fail(why, why_len, -EINVAL, "profile %s: invalid kind", p->name);
    }
    unsigned kernels = 0, initrds = 0, stage2s = 0, disks = 0;
    for (size_t i = 0; i < p->n_images; i++) {
        const model_image *im = &p->images[i];
        if (!model_file_name_valid(im->name)) {
            return fail(why, why_len, -EINVAL, "profile %s: invalid image file name", p->name);
        }
        if (im->kind != IMAGE_KERNEL && im->kind != IMAGE_INITRD && im->kind != IMAGE_STAGE2 &&
            im->kind != IMAGE_OTHER && im->kind != IMAGE_DISK) {
            return fail(why, why_len, -EINVAL, "profile %s: image %s: invalid kind", p->name,
                        im->name);
        }
        if (!im->url || strlen(im->url) > MODEL_URL_MAX ||
            (strncmp(im->url, "http://", 7) != 0 && strncmp(im->url, "https://", 8) != 0)) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: image %s: url must be http:// or https://", p->name, im->name);
        }
        if (im->size > INT64_MAX) {
            return fail(why, why_len, -EINVAL, "profile %s: image %s: size too large", p->name,
                        im->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (streq(im->name, p->images[j].name)) {
                return fail(why, why_len, -EINVAL, "profile %s: image file name %s used twice",
                            p->name, im->name);
            }
        }
        kernels += im->kind == IMAGE_KERNEL;
        initrds += im->kind == IMAGE_INITRD;
        stage2s += im->kind == IMAGE_STAGE2;
        disks += im->kind == IMAGE_DISK;
    }
    if (p->n_ssh_keys > MODEL_SSH_KEYS_MAX || (p->n_ssh_keys > 0 && !p->ssh_keys)) {
        return fail(why, why_len, -EINVAL, "profile %s: more than %u ssh_authorized_keys", p->name,
                    MODEL_SSH_KEYS_MAX);
    }
    if (p->kind == PROFILE_INSTALL) {
        if (kernels != 1 || initrds != 1 || stage2s > 1) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: needs exactly one kernel and one initrd (and at most one "
                        "stage2)",
                        p->name);
        }
        if (disks > 0 || p->n_ssh_keys > 0 || p->user_data) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: image, ssh_authorized_keys and user_data need kind = image",
                        p->name);
        }
        return check_root_device(p, why, why_len);
    }
    if (p->kind == PROFILE_DEBIAN_INSTALLER) {
        if (kernels != 1 || initrds != 1 || stage2s > 0 || disks > 0) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: kind = debian-installer needs exactly one kernel and one "
                        "initrd, and no stage2 or image",
                        p->name);
        }
        /* d-i runs no dracut hooks and configures its network with netcfg's
         * static configuration from the kernel command line: an overlay or
         * DHCPv6 addressing would silently do nothing. */
        if (p->overlay || p->user_data || p->ip != IP_MODE_STATIC) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: kind = debian-installer takes no overlay and no user_data, "
                        "and needs ip = static",
                        p->name);
        }
        int r = check_ssh_keys(p, why, why_len);
        return r < 0 ? r : check_root_device(p, why, why_len);
    }
    /* An image profile: the agent boots its deploy ramdisk, which writes the
     * disk image; a kernel or installer of the profile's own would never be
     * used, so it is an error rather than a silent no-op. */
    if (disks != 1 || kernels > 0 || initrds > 0 || stage2s > 0) {
        return fail(why, why_len, -EINVAL,
                    "profile %s: kind = image needs exactly one image and no kernel, initrd or "
                    "stage2",
                    p->name);
    }
    if (p->kickstart || p->overlay) {
        return fail(why, why_len, -EINVAL,
                    "profile %s: kind = image takes no kickstart and no overlay", p->name);
    }
    int r = check_ssh_keys(p, why, why_len);
    if (r < 0) {
        return r;
    }
    if (p->user_data && strlen(p->user_data) > MODEL_TEMPLATE_MAX) {
        return fail(why, why_len, -EINVAL, "profile %s: user_data template too long", p->name);
    }
    if (model_user_data_is_mime(p->user_data)) {
        return fail(why, why_len, -EINVAL,
                    "profile %s: user_data is a MIME document; give one part (the seed makes "
                    "the multipart)",
                    p->name);
    }
    return check_root_device(p, why, why_len);
}

static int check_ssh_keys(const model_profile *p, char *why, size_t why_len)
{
    for (size_t i = 0; i < p->n_ssh_keys; i++) {
        if (!model_ssh_key_valid(p->ssh_keys[i])) {
            return fail(why, why_len, -EINVAL,
                        "profile %s: ssh_authorized_keys line %zu is not one printable line "
                        "\"TYPE KEY [COMMENT]\"",
                        p->name, i + 1);
        }
    }
    return 0;
}

static int check_root_device(const model_profile *p, char *why, size_t why_len)
{
    if (p->root_device && !model_root_device_valid(p->root_device)) {
        return fail(why, why_len, -EINVAL, "profile %s: root_device is not auto or a /dev/ path",
                    p->name);
    }
    return 0;
}

bool model_root_device_valid(const char *s)
{
    if (streq(s, "auto")) {
        return true;
    }
    size_t len = strlen(s);
    if (strncmp(s, "/dev/", 5) != 0 || len == 5 || len > MODEL_ROOT_DEVICE_MAX ||
        s[len - 1] == '/' || strstr(s, "//") || strstr(s, "/./") || strstr(s, "/../") ||
        (len >= 3 && (streq(s + len - 2, "/.") || streq(s + len - 3, "/..")))) {
        return false;
    }
    for (const char *c = s; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || strchr("/._:+-", *c);
        if (!ok) {
            return false;
        }
    }
    return true;
}

void model_profile_clear(model_profile *p)
{
    free(p->name);
    for (size_t i = 0; i < p->n_images; i++) {
        free(p->images[i].name);
        free(p->images[i].url);
    }
    free(p->images);
    free(p->cmdline);
    free(p->kickstart);
    free(p->root_device);
    for (size_t i = 0; i < p->n_ssh_keys; i++) {
        free(p->ssh_keys[i]);
    }
    free(p->ssh_keys);
    free(p->user_data);
    memset(p, 0, sizeof(*p));
}

static char *strdup_or_null(const char *s, bool *failed)
{
    if (!s) {
        return NULL;
    }
    char *c = strdup(s);
    *failed |= !c;
    return c;
}

int model_profile_copy(const model_profile *src, model_profile *dst)
{
    bool failed = false;
    *dst = *src;
    dst->name = strdup_or_null(src->name, &failed);
    dst->cmdline = strdup_or_null(src->cmdline, &failed);
    dst->kickstart = strdup_or_null(src->kickstart, &failed);
    dst->root_device = strdup_or_null(src->root_device, &failed);
    dst->user_data = strdup_or_null(src->user_data, &failed);
    dst->images = NULL;
    dst->n_images = 0;
    dst->ssh_keys = NULL;
    dst->n_ssh_keys = 0;
    if (src->n_ssh_keys > 0) {
        dst->ssh_keys = calloc(src->n_ssh_keys, sizeof(*dst->ssh_keys));
        failed |= !dst->ssh_keys;
    }
    for (size_t i = 0; !failed && i < src->n_ssh_keys; i++) {
        dst->ssh_keys[i] = strdup_or_null(src->ssh_keys[i], &failed);
        dst->n_ssh_keys = i + 1;
    }
    if (src->n_images > 0) {
        dst->images = calloc(src->n_images, sizeof(*dst->images));
        failed |= !dst->images;
    }
    for (size_t i = 0; !failed && i < src->n_images; i++) {
        dst->images[i] = src->images[i];
        dst->images[i].name = strdup_or_null(src->images[i].name, &failed);
        dst->images[i].url = strdup_or_null(src->images[i].url, &failed);
        dst->n_images = i + 1;
    }
    if (failed) {
        model_profile_clear(dst);
        return -ENOMEM;
    }
    return 0;
}
