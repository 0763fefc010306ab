/* preflight: what the agent's start-up would refuse, checked without
 * starting anything, so that a configuration `--check-config` passes never
 * fails at start and a permanent mistake is fatal at once instead of being
 * retried forever:
 *
 *   - every [dhcp6] interface exists;
 *   - the [http] and [tftp] listen addresses are this machine's (a bind to
 *     port 0 of the same address, which leaves the real port alone);
 *   - [deploy] ramdisk, when set, holds a readable, non-empty vmlinuz and
 *     initrd.img (deploy-ramdisk/build-ramdisk.sh);
 *   - with a [controller]: the certificate and key are readable and match,
 *     the key is readable by its owner alone, and the certificate is an
 *     agent's for this [agent] rack.
 *
 * agent_preflight_trust() adds what time can change: the CA and CRL accept
 * that certificate today (not revoked, not expired, the CRL signed and
 * current). --check-config refuses a configuration that fails it; a
 * starting agent only warns, because a rack keeps serving the intents it
 * holds when its uplink cannot work (a stale CRL is renewed on disk and
 * picked up without a restart).
 *
 * The hosts file's own rules (addresses given twice, a host on the agent's
 * address) are the hosts-file parser's (hostsfile.h). */
#pragma once

#include "config.h"
#include "diag.h"
#include "model/intent.h"

/* Every problem goes to `d` naming the config file; -EINVAL when there was
 * any, 0 otherwise. */
int agent_preflight(const agent_config *cfg, diag *d);
int agent_preflight_trust(const agent_config *cfg, diag *d);
/* A standalone hosts file's image profiles need [deploy] ramdisk: one
 * problem per image profile when it is not set (-EINVAL), 0 otherwise. With
 * a controller the profiles arrive later; the agent logs the same sentence
 * then (once per profile and intent set). */
int agent_preflight_image_profiles(const agent_config *cfg, const intent_set *set, diag *d);
