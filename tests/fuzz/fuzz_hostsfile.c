/* Fuzzes the standalone hosts file reader (model/hostsfile.c), which
 * the agent and the CLI's imports share: the bytes are hosts.conf, written to
 * a private directory that also holds kickstart templates it may name (a good
 * one, el9.ks, and one with an unknown placeholder, bad.ks). It is read as the
 * CLI reads it (no options) and as the agent does (a default gateway, its
 * own address, `install =` checked). A read fails exactly when there is a
 * problem to report; a file that reads has kept every promise the module
 * checks: valid names, a kernel and an initrd per profile, no MAC or address
 * on two hosts, none on the agent's address, installs naming profiles. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "fuzz_file.h"
#include "model/hostsfile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect_name(const char *name)
{
    size_t n = strlen(name);
    RB_ASSERT(n > 0 && n <= 63);
    RB_ASSERT(strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
              n);
}

static void check(const hostsfile *hf, const hostsfile_options *opts)
{
    for (size_t i = 0; i < hf->n_profiles; i++) {
        const model_profile *p = &hf->profiles[i].p;
        expect_name(p->name);
        bool kernel = false, initrd = false;
        for (size_t k = 0; k < p->n_images; k++) {
            kernel |= p->images[k].kind == IMAGE_KERNEL;
            initrd |= p->images[k].kind == IMAGE_INITRD;
            RB_ASSERT(p->images[k].url && p->images[k].name);
        }
        RB_ASSERT(kernel && initrd);
        RB_ASSERT(hostsfile_find_profile(hf, p->name) == &hf->profiles[i]);
    }
    for (size_t i = 0; i < hf->n_hosts; i++) {
        const hostsfile_host *h = &hf->hosts[i];
        expect_name(h->name);
        RB_ASSERT(h->in.n_macs >= 1 && h->in.n_macs <= INTENT_MAX_MACS);
        if (opts && opts->has_agent_address) {
            RB_ASSERT(memcmp(&h->in.address, &opts->agent_address, 16) != 0);
        }
        if (opts && opts->check_installs && h->profile) {
            RB_ASSERT(hostsfile_find_profile(hf, h->profile) != NULL);
        }
        /* Quadratic, so only for files of a realistic size. */
        for (size_t j = 0; j < i && hf->n_hosts <= 256; j++) {
            const hostsfile_host *o = &hf->hosts[j];
            RB_ASSERT(!streq(h->name, o->name));
            RB_ASSERT(memcmp(&h->in.address, &o->in.address, 16) != 0);
            for (size_t a = 0; a < h->in.n_macs; a++) {
                for (size_t b = 0; b < o->in.n_macs; b++) {
                    RB_ASSERT(memcmp(h->in.macs[a], o->in.macs[b], 6) != 0);
                }
            }
        }
    }
}

static void read_as(const char *path, const hostsfile_options *opts)
{
    diag *d = diag_new();
    RB_ASSERT(d != NULL);
    hostsfile *hf = NULL;
    int r = hostsfile_read(path, opts, d, &hf);
    if (r < 0) {
        RB_ASSERT(hf == NULL);
        RB_ASSERT(r == -ENOMEM || diag_count(d) > 0);
    } else {
        RB_ASSERT(r == 0 && hf != NULL && diag_count(d) == 0);
        check(hf, opts);
    }
    hostsfile_free(hf);
    diag_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char good_ks[] = "text\nnetwork --hostname={{hostname}}\nreboot\n";
    static const char bad_ks[] = "network --hostname={{nope}}\n";
    static hostsfile_options agent;
    const char *dir = fuzz_dir("fuzz_hostsfile");
    if (size > (1u << 20)) {
        return 0;
    }
    if (!agent.check_installs) {
        fuzz_file_write(dir, "el9.ks", good_ks, strlen(good_ks));
        fuzz_file_write(dir, "bad.ks", bad_ks, strlen(bad_ks));
        /* A kickstart path is the file's to name: /dev/stdin must not hang
         * the fuzzer. */
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        RB_ASSERT(null >= 0 && dup2(null, STDIN_FILENO) == STDIN_FILENO);
        close(null);
        agent.has_gateway = true;
        RB_ASSERT(inet_pton(AF_INET6, "2001:db8:1::fffe", &agent.gateway) == 1);
        agent.has_agent_address = true;
        RB_ASSERT(inet_pton(AF_INET6, "2001:db8:1::1", &agent.agent_address) == 1);
        agent.check_installs = true;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s", fuzz_file_write(dir, "hosts.conf", data, size));
    read_as(path, NULL);
    read_as(path, &agent);
    return 0;
}
