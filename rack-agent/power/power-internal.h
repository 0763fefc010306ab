/* What power/'s own files share and white-box tests may read. */
#pragma once

#include <stdint.h>

#include "power/power.h"

struct power_target {
    char *scheme; /* lower case */
    char *host;   /* without brackets */
    uint16_t port;
    bool ipv6; /* host is an IPv6 literal: written in brackets */
    char *user;
    char *password; /* wiped on free */
    char *display;  /* power_target_to_string(): never the password */
};

/* The host and port as libfreeipmi and URLs take them: "[2001:db8::1]:623",
 * "bmc17.example:623". -ENOSPC when it does not fit. */
int power_target_format_hostport(const power_target *t, char *buf, size_t size);
