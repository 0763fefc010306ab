/* Fuzzes the agent's configuration loader (rack-agent/config.c) over the INI
 * reader: the bytes are agent.conf, written to a private file and loaded as
 * the daemon and --check-config load it. Loading fails exactly when there is
 * a problem to report, and a loaded configuration has resolved every path it
 * names against the file's directory (here an absolute one), so a relative
 * path never reaches a daemon that may have changed directory. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "diag.h"
#include "fuzz_file.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect_absolute(const char *path)
{
    RB_ASSERT(path == NULL || path[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    const char *path = fuzz_file_write(fuzz_dir("fuzz_agent_config"), "agent.conf", data, size);
    diag *d = diag_new();
    RB_ASSERT(d != NULL);
    agent_config *cfg = NULL;
    int r = agent_config_load(path, d, &cfg);
    if (r < 0) {
        RB_ASSERT(cfg == NULL);
        /* Every refusal says why (a read error too). */
        RB_ASSERT(r == -ENOMEM || diag_count(d) > 0);
    } else {
        RB_ASSERT(r == 0 && cfg != NULL && diag_count(d) == 0);
        expect_absolute(cfg->hosts_path);
        expect_absolute(cfg->state_dir);
        expect_absolute(cfg->tftp_root);
        expect_absolute(cfg->cache_dir);
        expect_absolute(cfg->controller_ca);
        expect_absolute(cfg->controller_cert);
        expect_absolute(cfg->controller_key);
        expect_absolute(cfg->controller_crl);
    }
    agent_config_free(cfg);
    diag_free(d);
    return 0;
}
