/* fleet: see fleet.h. */
#include "fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "hex.h"
#include "parse.h"
#include "rbproto.h"
#include "util.h"

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

/* common/parse's rule (the wire's), and NULL is no name. */
bool fleet_object_name_valid(const char *n)
{
    return n && fleet_name_valid(n);
}

bool fleet_file_name_valid(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    return len > 0 && len <= RBPROTO_MAX_FILE_NAME && n[0] != '.' &&
           strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") == len;
}

int fleet_host_validate(const store_host *h, char *why, size_t why_len)
{
    if (!h || !fleet_object_name_valid(h->name)) {
        return fail(why, why_len, -EINVAL, "invalid host name");
    }
    if (!fleet_object_name_valid(h->rack)) {
        return fail(why, why_len, -EINVAL, "host %s: invalid rack name", h->name);
    }
    if (h->n_macs < 1 || h->n_macs > STORE_MACS_MAX) {
        return fail(why, why_len, -EINVAL, "host %s: %zu MACs, want 1..%u", h->name, h->n_macs,
                    STORE_MACS_MAX);
    }
    for (size_t i = 0; i < h->n_macs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (memcmp(h->macs[i], h->macs[j], 6) == 0) {
                char m[FORMAT_MAC_LEN];
                format_mac(h->macs[i], m);
                return fail(why, why_len, -EINVAL, "host %s: mac %s listed twice", h->name, m);
            }
        }
    }
    if (h->prefix_length < 1 || h->prefix_length > 128) {
        return fail(why, why_len, -EINVAL, "host %s: prefix length %u, want 1..128", h->name,
                    h->prefix_length);
    }
    if (strnlen(h->hostname, sizeof(h->hostname)) >= sizeof(h->hostname)) {
        return fail(why, why_len, -EINVAL, "host %s: hostname too long", h->name);
    }
    return 0;
}

int fleet_profile_validate(const store_profile *p, char *why, size_t why_len)
{
    if (!p || !fleet_object_name_valid(p->name)) {
        return fail(why, why_len, -EINVAL, "invalid profile name");
    }
    if (p->cmdline && strlen(p->cmdline) > RBPROTO_MAX_KERNEL_ARGS) {
        return fail(why, why_len, -EINVAL, "profile %s: cmdline too long", p->name);
    }
    if (p->kickstart && strlen(p->kickstart) > RBPROTO_MAX_TEMPLATE) {
        return fail(why, why_len, -EINVAL, "profile %s: kickstart template too long", p->name);
    }
    if (p->ip_mode != RACKBOOT__V1__IP_MODE__IP_MODE_STATIC &&
        p->ip_mode != RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6) {
        return fail(why, why_len, -EINVAL, "profile %s: invalid ip mode", p->name);
    }
    if (p->n_images > RBPROTO_MAX_IMAGES || (p->n_images > 0 && !p->images)) {
        return fail(why, why_len, -EINVAL, "profile %s: too many images", p->name);
    }
    unsigned kernels = 0, initrds = 0;
    for (size_t i = 0; i < p->n_images; i++) {
        const store_image *im = &p->images[i];
        if (!fleet_file_name_valid(im->name)) {
            return fail(why, why_len, -EINVAL, "profile %s: invalid image file name", p->name);
        }
        if (!rbproto_image_kind_to_string(im->kind)) {
            return fail(why, why_len, -EINVAL, "profile %s: image %s: invalid kind", p->name,
                        im->name);
        }
        if (!im->url || strlen(im->url) > RBPROTO_MAX_URL ||
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
        kernels += im->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL;
        initrds += im->kind == RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD;
    }
    if (kernels != 1 || initrds != 1) {
        return fail(why, why_len, -EINVAL, "profile %s: needs exactly one kernel and one initrd",
                    p->name);
    }
    return 0;
}

static int random_bytes(void *buf, size_t n, char *why, size_t why_len)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = getrandom((uint8_t *)buf + done, n - done, 0);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            int r = negative_errno();
            return fail(why, why_len, r, "getrandom: %s", strerror(-r));
        }
        done += (size_t)k;
    }
    return 0;
}

/* RFC 9562 §5.4: version 4 (random) UUID, lower-case. */
static int make_uuid(char out[STORE_ID_LEN + 1], char *why, size_t why_len)
{
    uint8_t b[16];
    char hex[33];
    int r = random_bytes(b, sizeof(b), why, why_len);
    if (r < 0) {
        return r;
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    hex_encode(b, sizeof(b), hex);
    snprintf(out, STORE_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    return 0;
}

int fleet_install_secrets(char ret_id[STORE_ID_LEN + 1], char ret_token[STORE_TOKEN_LEN + 1],
                          char *why, size_t why_len)
{
    char id[STORE_ID_LEN + 1];
    uint8_t token_bytes[STORE_TOKEN_LEN / 2];
    int r = make_uuid(id, why, why_len);
    if (r >= 0) {
        r = random_bytes(token_bytes, sizeof(token_bytes), why, why_len);
    }
    if (r < 0) {
        return r;
    }
    memcpy(ret_id, id, sizeof(id));
    hex_encode(token_bytes, sizeof(token_bytes), ret_token);
    return 0;
}
