/* The fixture the agent configuration tests share: each test writes a config
 * text to a temporary agent.conf, loads it, and looks for a problem reported
 * at a given line. Include after <cmocka.h>. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "fileio.h"

static char dir[64];
static char path[96];

static int setup(void **state)
{
    strcpy(dir, "/tmp/test_agent_conf.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/agent.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

/* Writes `text` as the config file and loads it; *ret_d gets every problem. */
static int load(const char *text, diag **ret_d, agent_config **ret)
{
    assert_int_equal(fileio_write_atomic(path, text, strlen(text), 0644), 0);
    *ret_d = diag_new();
    assert_non_null(*ret_d);
    return agent_config_load(path, *ret_d, ret);
}

/* True when some diag entry is "PATH:LINE: ..." containing `needle`. */
static bool has_problem(const diag *d, unsigned line, const char *needle)
{
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
    for (size_t i = 0; i < diag_count(d); i++) {
        const char *e = diag_get(d, i);
        if (strncmp(e, prefix, strlen(prefix)) == 0 && strstr(e, needle)) {
            return true;
        }
    }
    return false;
}
