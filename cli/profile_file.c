#include "profile_file.h"

#include <errno.h>
#include <string.h>

#include "model/hostsfile.h"
#include "model_pb.h"
#include "pb.h"
#include "rbproto.h"
#include "util.h"
#include "values.h"

static unsigned entry_line(const ini_section *s, const char *key)
{
    const ini_entry *e = ini_section_find(s, key);
    return e ? e->line : s->line;
}

int profile_file_read_profiles(const char *path, diag *d, Rackboot__V1__ProfilesImportRequest *into)
{
    hostsfile *hf = NULL;
    int r = hostsfile_read(path, NULL, d, &hf);
    if (r < 0) {
        return r;
    }
    unsigned errors = 0;
    if (hf->n_profiles == 0) {
        diag_add(d, path, 0, "no [profile NAME] sections");
        errors++;
    }
    for (size_t k = 0; k < hf->n_profiles; k++) {
        const hostsfile_profile *hp = &hf->profiles[k];
        const model_profile *p = &hp->p;
        unsigned before = errors;
        /* What the agent's standalone mode allows but the wire does not. */
        if (!cli_name_valid(p->name)) {
            diag_add(d, path, hp->section->line,
                     "[profile %s]: a profile name starts with a "
                     "letter or digit",
                     p->name);
            errors++;
        }
        if (p->kickstart && strlen(p->kickstart) > RBPROTO_MAX_TEMPLATE) {
            diag_add(d, path, entry_line(hp->section, "kickstart"),
                     "kickstart: %zu bytes, the controller takes at most %u", strlen(p->kickstart),
                     RBPROTO_MAX_TEMPLATE);
            errors++;
        }
        if (p->user_data && strlen(p->user_data) > RBPROTO_MAX_TEMPLATE) {
            diag_add(d, path, entry_line(hp->section, "user_data"),
                     "user_data: %zu bytes, the controller takes at most %u", strlen(p->user_data),
                     RBPROTO_MAX_TEMPLATE);
            errors++;
        }
        if (p->cmdline && strlen(p->cmdline) > RBPROTO_MAX_KERNEL_ARGS) {
            diag_add(d, path, entry_line(hp->section, "cmdline"), "cmdline: longer than %u bytes",
                     RBPROTO_MAX_KERNEL_ARGS);
            errors++;
        }
        if (p->n_images > RBPROTO_MAX_IMAGES) {
            diag_add(d, path, hp->section->line, "[profile %s]: more than %u images", p->name,
                     RBPROTO_MAX_IMAGES);
            errors++;
        }
        if (errors != before) {
            continue;
        }
        Rackboot__V1__Profile *w = NULL;
        r = model_profile_to_pb(p, false, NULL, &w);
        if (r < 0) {
            goto out;
        }
        if (rbproto_validate_profile(w) < 0) {
            diag_add(d, path, hp->section->line,
                     "[profile %s] is not valid on the wire: check that cmdline, the "
                     "kickstart and user_data hold printable text only (UTF-8, tabs and "
                     "newlines)",
                     p->name);
            errors++;
            cli_pb_free(w);
            continue;
        }
        r = cli_pb_add_message((void ***)&into->profiles, &into->n_profiles, w);
        if (r < 0) {
            cli_pb_free(w);
            goto out;
        }
    }
    r = errors ? -EINVAL : 0;
out:
    hostsfile_free(hf);
    return r;
}

static int host_to_wire(const hostsfile_host *h, const char *rack, Rackboot__V1__Host **ret)
{
    Rackboot__V1__Host *w = cli_pb_new(&rackboot__v1__host__descriptor);
    if (!w) {
        return -ENOMEM;
    }
    const intent *in = &h->in;
    int r = cli_pb_set_string(&w->name, h->name);
    for (size_t m = 0; r == 0 && m < in->n_macs; m++) {
        r = cli_pb_add_bytes(&w->macs, &w->n_macs, in->macs[m], 6);
    }
    if (r == 0) {
        r = cli_pb_set_string(&w->rack, rack);
    }
    if (r == 0) {
        r = cli_pb_set_bytes(&w->address, &in->address, sizeof(in->address));
    }
    w->prefix_length = in->prefix_len;
    if (r == 0 && in->has_gateway) {
        r = cli_pb_set_bytes(&w->gateway, &in->gateway, sizeof(in->gateway));
    }
    if (r == 0 && in->hostname) {
        r = cli_pb_set_string(&w->hostname, in->hostname);
    }
    if (r == 0 && h->bmc_url) {
        r = cli_pb_set_string(&w->bmc_url, h->bmc_url);
    }
    if (r == 0 && h->bmc_user) {
        r = cli_pb_set_string(&w->bmc_user, h->bmc_user);
    }
    if (r == 0 && h->bmc_password) {
        r = cli_pb_set_string(&w->bmc_password, h->bmc_password);
    }
    w->firmware = cli_firmware_to_pb(h->firmware);
    if (r < 0) {
        cli_pb_free(w);
        return r;
    }
    *ret = w;
    return 0;
}

int profile_file_read_hosts(const char *path, const char *rack, diag *d, diag *notes,
                            Rackboot__V1__HostsAddRequest *into)
{
    hostsfile *hf = NULL;
    int r = hostsfile_read(path, NULL, d, &hf);
    if (r < 0) {
        return r;
    }
    unsigned errors = 0;
    if (hf->n_hosts == 0) {
        diag_add(d, path, 0, "no [host NAME] sections");
        errors++;
    }
    for (size_t i = 0; i < hf->n_hosts; i++) {
        const hostsfile_host *h = &hf->hosts[i];
        if (!cli_name_valid(h->name)) {
            diag_add(d, path, h->section->line,
                     "[host %s]: a host name starts with a letter or digit", h->name);
            errors++;
            continue;
        }
        if (h->profile) {
            diag_add(notes, path, h->install_line,
                     "install = %s is not imported; start it with 'rackboot install %s "
                     "--profile %s'",
                     h->profile, h->name, h->profile);
        }
        static const char *const rack_keys[] = { "dns", "search" };
        for (size_t k = 0; k < ARRAY_SIZE(rack_keys); k++) {
            const ini_entry *e = ini_section_find(h->section, rack_keys[k]);
            if (e) {
                diag_add(notes, path, e->line,
                         "%s is not imported: the controller sets it per rack", rack_keys[k]);
            }
        }
        Rackboot__V1__Host *w = NULL;
        r = host_to_wire(h, rack, &w);
        if (r < 0) {
            goto out;
        }
        if (rbproto_validate_host(w) < 0) {
            diag_add(d, path, h->section->line, "[host %s] is not valid on the wire", h->name);
            errors++;
            cli_pb_free(w);
            continue;
        }
        r = cli_pb_add_message((void ***)&into->hosts, &into->n_hosts, w);
        if (r < 0) {
            cli_pb_free(w);
            goto out;
        }
    }
    r = errors ? -EINVAL : 0;
out:
    hostsfile_free(hf);
    return r;
}
