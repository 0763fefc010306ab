#include "model_pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

Rackboot__V1__ImageKind model_image_kind_to_pb(image_kind k)
{
    switch (k) {
    case IMAGE_KERNEL:
        return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL;
    case IMAGE_INITRD:
        return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD;
    case IMAGE_STAGE2:
        return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2;
    case IMAGE_OTHER:
        return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER;
    case IMAGE_DISK:
        return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK;
    }
    return RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_UNSPECIFIED;
}

image_kind model_image_kind_from_pb(Rackboot__V1__ImageKind k)
{
    switch (k) {
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_KERNEL:
        return IMAGE_KERNEL;
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_INITRD:
        return IMAGE_INITRD;
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_STAGE2:
        return IMAGE_STAGE2;
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_DISK:
        return IMAGE_DISK;
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_OTHER:
    case RACKBOOT__V1__IMAGE_KIND__IMAGE_KIND_UNSPECIFIED:
    case _RACKBOOT__V1__IMAGE_KIND_IS_INT_SIZE:
        break;
    }
    return IMAGE_OTHER;
}

static profile_kind profile_kind_from_pb(Rackboot__V1__ProfileKind k)
{
    switch (k) {
    case RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE:
        return PROFILE_IMAGE;
    case RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_DEBIAN_INSTALLER:
        return PROFILE_DEBIAN_INSTALLER;
    default:
        return PROFILE_INSTALL;
    }
}

static Rackboot__V1__ProfileKind profile_kind_to_pb(profile_kind k)
{
    switch (k) {
    case PROFILE_INSTALL:
        break;
    case PROFILE_IMAGE:
        return RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_IMAGE;
    case PROFILE_DEBIAN_INSTALLER:
        return RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_DEBIAN_INSTALLER;
    }
    return RACKBOOT__V1__PROFILE_KIND__PROFILE_KIND_INSTALL;
}

static ip_mode ip_mode_from_pb(Rackboot__V1__IpMode m)
{
    return m == RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6 ? IP_MODE_DHCP6 : IP_MODE_STATIC;
}

static uefi_boot uefi_boot_from_pb(Rackboot__V1__UefiBoot b)
{
    return b == RACKBOOT__V1__UEFI_BOOT__UEFI_BOOT_UKI ? UEFI_BOOT_UKI : UEFI_BOOT_IPXE;
}

static Rackboot__V1__UefiBoot uefi_boot_to_pb(uefi_boot b)
{
    return b == UEFI_BOOT_UKI ? RACKBOOT__V1__UEFI_BOOT__UEFI_BOOT_UKI
                              : RACKBOOT__V1__UEFI_BOOT__UEFI_BOOT_IPXE;
}

static Rackboot__V1__IpMode ip_mode_to_pb(ip_mode m)
{
    switch (m) {
    case IP_MODE_STATIC:
        break;
    case IP_MODE_DHCP6:
        return RACKBOOT__V1__IP_MODE__IP_MODE_DHCP6;
    }
    return RACKBOOT__V1__IP_MODE__IP_MODE_STATIC;
}

/* NULL for NULL or "" (a wire string is never NULL; an absent one is ""). */
static char *dup_text(const char *s, bool *failed)
{
    if (!s || !*s) {
        return NULL;
    }
    char *c = strdup(s);
    *failed |= !c;
    return c;
}

int model_profile_from_pb(const Rackboot__V1__Profile *m, model_profile *ret)
{
    bool failed = false;
    model_profile p = {
        .kind = profile_kind_from_pb(m->kind),
        .overlay = m->overlay,
        .ip = ip_mode_from_pb(m->ip_mode),
        .uefi = uefi_boot_from_pb(m->uefi_boot),
        .keep_ra = m->keep_ra,
        .any_source = m->any_source,
    };
    p.name = strdup(m->name);
    failed |= !p.name;
    p.cmdline = dup_text(m->kernel_args, &failed);
    p.kickstart = dup_text(m->kickstart_template, &failed);
    p.root_device = dup_text(m->root_device, &failed);
    p.user_data = dup_text(m->user_data_template, &failed);
    if (!failed && m->n_ssh_authorized_keys > 0) {
        p.ssh_keys = calloc(m->n_ssh_authorized_keys, sizeof(*p.ssh_keys));
        failed |= !p.ssh_keys;
    }
    for (size_t i = 0; !failed && i < m->n_ssh_authorized_keys; i++) {
        p.ssh_keys[i] = strdup(m->ssh_authorized_keys[i]);
        p.n_ssh_keys = i + 1;
        failed |= !p.ssh_keys[i];
    }
    if (m->kickstart_sha256.len == sizeof(p.kickstart_sha256)) {
        memcpy(p.kickstart_sha256, m->kickstart_sha256.data, sizeof(p.kickstart_sha256));
    }
    if (m->n_images > 0) {
        p.images = calloc(m->n_images, sizeof(*p.images));
        failed |= !p.images;
    }
    for (size_t i = 0; !failed && i < m->n_images; i++) {
        const Rackboot__V1__Image *im = m->images[i];
        model_image *img = &p.images[i];
        img->kind = model_image_kind_from_pb(im->kind);
        img->size = im->size;
        if (im->sha256.len == sizeof(img->sha256)) {
            memcpy(img->sha256, im->sha256.data, sizeof(img->sha256));
        }
        img->name = strdup(im->name);
        img->url = strdup(im->url);
        p.n_images = i + 1;
        failed |= !img->name || !img->url;
    }
    if (failed) {
        model_profile_clear(&p);
        return -ENOMEM;
    }
    *ret = p;
    return 0;
}

static void *pb_alloc(ProtobufCAllocator *alloc, size_t size)
{
    return alloc ? alloc->alloc(alloc->allocator_data, size) : malloc(size);
}

/* A copy for a string field; protobuf-c's shared "" stays the default for
 * NULL (free_unpacked knows not to free it). */
static int set_string(ProtobufCAllocator *alloc, char **field, const char *value)
{
    if (!value || !*value) {
        return 0;
    }
    size_t n = strlen(value) + 1;
    char *c = pb_alloc(alloc, n);
    if (!c) {
        return -ENOMEM;
    }
    memcpy(c, value, n);
    *field = c;
    return 0;
}

static int set_bytes(ProtobufCAllocator *alloc, ProtobufCBinaryData *field, const void *data,
                     size_t n)
{
    field->data = pb_alloc(alloc, n);
    if (!field->data) {
        return -ENOMEM;
    }
    memcpy(field->data, data, n);
    field->len = n;
    return 0;
}

static int image_to_pb(const model_image *img, ProtobufCAllocator *alloc, Rackboot__V1__Image **ret)
{
    Rackboot__V1__Image *m = pb_alloc(alloc, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    rackboot__v1__image__init(m);
    m->kind = model_image_kind_to_pb(img->kind);
    m->size = img->size;
    int r = set_string(alloc, &m->name, img->name);
    if (r == 0) {
        r = set_string(alloc, &m->url, img->url);
    }
    if (r == 0) {
        r = set_bytes(alloc, &m->sha256, img->sha256, sizeof(img->sha256));
    }
    if (r < 0) {
        model_pb_free(m, alloc);
        return r;
    }
    *ret = m;
    return 0;
}

int model_profile_to_pb(const model_profile *p, bool with_sha256, ProtobufCAllocator *alloc,
                        Rackboot__V1__Profile **ret)
{
    Rackboot__V1__Profile *m = pb_alloc(alloc, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    rackboot__v1__profile__init(m);
    m->overlay = p->overlay;
    m->ip_mode = ip_mode_to_pb(p->ip);
    m->uefi_boot = uefi_boot_to_pb(p->uefi);
    m->keep_ra = p->keep_ra;
    m->any_source = p->any_source;
    m->kind = profile_kind_to_pb(p->kind);
    int r = set_string(alloc, &m->name, p->name);
    if (r == 0) {
        r = set_string(alloc, &m->kernel_args, p->cmdline);
    }
    if (r == 0) {
        r = set_string(alloc, &m->kickstart_template, p->kickstart);
    }
    if (r == 0) {
        r = set_string(alloc, &m->root_device, p->root_device);
    }
    if (r == 0) {
        r = set_string(alloc, &m->user_data_template, p->user_data);
    }
    if (r == 0 && p->n_ssh_keys > 0) {
        m->ssh_authorized_keys = pb_alloc(alloc, p->n_ssh_keys * sizeof(*m->ssh_authorized_keys));
        r = m->ssh_authorized_keys ? 0 : -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < p->n_ssh_keys; i++) {
        /* Always a copy, "" too: protobuf-c frees every element of a
         * repeated string field. */
        size_t n = strlen(p->ssh_keys[i]) + 1;
        char *c = pb_alloc(alloc, n);
        if (!c) {
            r = -ENOMEM;
            break;
        }
        memcpy(c, p->ssh_keys[i], n);
        m->ssh_authorized_keys[m->n_ssh_authorized_keys++] = c;
    }
    if (r == 0 && (with_sha256 || p->kickstart)) {
        r = set_bytes(alloc, &m->kickstart_sha256, p->kickstart_sha256,
                      sizeof(p->kickstart_sha256));
    }
    if (r == 0 && p->n_images > 0) {
        m->images = pb_alloc(alloc, p->n_images * sizeof(*m->images));
        r = m->images ? 0 : -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < p->n_images; i++) {
        r = image_to_pb(&p->images[i], alloc, &m->images[i]);
        if (r == 0) {
            m->n_images = i + 1;
        }
    }
    if (r < 0) {
        model_pb_free(m, alloc);
        return r;
    }
    *ret = m;
    return 0;
}

void *model_pb_free(void *msg, ProtobufCAllocator *alloc)
{
    if (msg) {
        protobuf_c_message_free_unpacked(msg, alloc);
    }
    return NULL;
}

int model_intent_from_pb(const Rackboot__V1__Intent *m, intent *in)
{
    *in = (intent){ 0 };
    if (m->n_macs > INTENT_MAX_MACS || m->n_dns_servers > INTENT_MAX_DNS ||
        m->n_search > INTENT_MAX_SEARCH || m->address.len != 16) {
        return -EINVAL;
    }
    in->install_id = strdup(m->install_id);
    in->host = strdup(m->host);
    in->hostname = strdup(*m->hostname ? m->hostname : m->host);
    in->token = strdup(m->token);
    if (!in->install_id || !in->host || !in->hostname || !in->token) {
        intent_clear(in);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_macs; i++) {
        memcpy(in->macs[i], m->macs[i].data, 6);
    }
    in->n_macs = m->n_macs;
    memcpy(&in->address, m->address.data, 16);
    in->prefix_len = (uint8_t)m->prefix_length;
    if (m->gateway.len == 16) {
        in->has_gateway = true;
        memcpy(&in->gateway, m->gateway.data, 16);
    }
    for (size_t i = 0; i < m->n_dns_servers; i++) {
        memcpy(&in->dns[i], m->dns_servers[i].data, 16);
    }
    in->n_dns = m->n_dns_servers;
    for (size_t i = 0; i < m->n_search; i++) {
        in->search[i] = strdup(m->search[i]);
        if (!in->search[i]) {
            intent_clear(in);
            return -ENOMEM;
        }
        in->n_search = i + 1;
    }
    in->attempt = m->attempt;
    return 0;
}
