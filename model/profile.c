#include "profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
};

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
    dst->images = NULL;
    dst->n_images = 0;
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
