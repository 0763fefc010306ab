/* store/columns: see columns.h. */
#include "store/columns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int store_col_image_kind(image_kind k)
{
    switch (k) {
    case IMAGE_KERNEL:
        return 1;
    case IMAGE_INITRD:
        return 2;
    case IMAGE_STAGE2:
        return 3;
    case IMAGE_DISK:
        return 5;
    case IMAGE_OTHER:
        break;
    }
    return 4;
}

image_kind store_col_image_kind_from(int v)
{
    switch (v) {
    case 1:
        return IMAGE_KERNEL;
    case 2:
        return IMAGE_INITRD;
    case 3:
        return IMAGE_STAGE2;
    case 5:
        return IMAGE_DISK;
    default:
        return IMAGE_OTHER;
    }
}

int store_col_profile_kind(profile_kind k)
{
    switch (k) {
    case PROFILE_INSTALL:
        break;
    case PROFILE_IMAGE:
        return 1;
    case PROFILE_DEBIAN_INSTALLER:
        return 2;
    }
    return 0;
}

profile_kind store_col_profile_kind_from(int v)
{
    return v == 1 ? PROFILE_IMAGE : v == 2 ? PROFILE_DEBIAN_INSTALLER : PROFILE_INSTALL;
}

int store_col_ip_mode(ip_mode m)
{
    switch (m) {
    case IP_MODE_STATIC:
        break;
    case IP_MODE_DHCP6:
        return 1;
    }
    return 0;
}

ip_mode store_col_ip_mode_from(int v)
{
    return v == 1 ? IP_MODE_DHCP6 : IP_MODE_STATIC;
}

int store_col_keys_join(const model_profile *p, char **ret)
{
    size_t len = 1;
    for (size_t i = 0; i < p->n_ssh_keys; i++) {
        len += strlen(p->ssh_keys[i]) + 1;
    }
    char *s = malloc(len);
    if (!s) {
        return -ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < p->n_ssh_keys; i++) {
        size_t n = strlen(p->ssh_keys[i]);
        memcpy(s + at, p->ssh_keys[i], n);
        at += n;
        if (i + 1 < p->n_ssh_keys) {
            s[at++] = '\n';
        }
    }
    s[at] = '\0';
    *ret = s;
    return 0;
}

int store_col_keys_split(const char *col, model_profile *p)
{
    if (!*col) {
        return 0;
    }
    size_t n = 1;
    for (const char *c = col; *c; c++) {
        n += *c == '\n';
    }
    p->ssh_keys = calloc(n, sizeof(*p->ssh_keys));
    if (!p->ssh_keys) {
        return -ENOMEM;
    }
    for (const char *c = col; p->n_ssh_keys < n; p->n_ssh_keys++) {
        const char *end = strchrnul(c, '\n');
        p->ssh_keys[p->n_ssh_keys] = strndup(c, (size_t)(end - c));
        if (!p->ssh_keys[p->n_ssh_keys]) {
            return -ENOMEM; /* the loaded profile's owner frees what was split */
        }
        c = *end ? end + 1 : end;
    }
    return 0;
}

const char *store_col_state(install_state st)
{
    const char *n = install_state_to_string(st);
    RB_ASSERT(n);
    return n;
}

int store_col_racks_json(const store_page *pg, char **ret, const char **ret_bad)
{
    size_t len = 3;
    for (size_t i = 0; i < pg->n_racks; i++) {
        len += strlen(pg->racks[i]) + 3;
    }
    char *json = malloc(len);
    if (!json) {
        return -ENOMEM;
    }
    size_t at = 0;
    json[at++] = '[';
    for (size_t i = 0; i < pg->n_racks; i++) {
        const char *n = pg->racks[i];
        for (const char *c = n; *c; c++) {
            if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
                free(json);
                *ret_bad = n;
                return -EINVAL;
            }
        }
        at += (size_t)snprintf(json + at, len - at, "%s\"%s\"", i ? "," : "", n);
    }
    json[at++] = ']';
    json[at] = '\0';
    *ret = json;
    return 0;
}
