/* Fuzzes what render parses from outside: request paths the HTTP
 * server hands over (/boot/<mac>.ipxe, /ks/<id>, /progress/<id>,
 * /phone-home/<id>), and the
 * same bytes as a `{{name}}` template (profile files are operator input, but
 * the controller imports them). Nothing may read out of bounds; an accepted
 * path must round-trip; a checked template must expand. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/template.h"
#include "render/context.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_id(int (*parse)(const char *, const char **, size_t *), const char *path)
{
    const char *id = NULL;
    size_t len = 0;
    if (parse(path, &id, &len) == 0) {
        RB_ASSERT(id >= path && len > 0 && len <= strlen(path));
        RB_ASSERT(id + len == path + strlen(path));
    } else {
        RB_ASSERT(id == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) {
        return 0;
    }
    char *path = memdup_str(data, size);
    if (!path) {
        return 0;
    }
    uint8_t mac[6];
    if (render_boot_path_parse(path, mac) == 0) {
        char again[64];
        snprintf(again, sizeof(again), "/boot/%02x-%02X-%02x%%3A%02x:%02X:%02x.ipxe", mac[0],
                 mac[1], mac[2], mac[3], mac[4], mac[5]);
        /* Mixed separators are refused; one kind throughout round-trips. */
        uint8_t m2[6];
        RB_ASSERT(render_boot_path_parse(again, m2) < 0);
        snprintf(again, sizeof(again), "/boot/%02X%%3a%02x%%3a%02x%%3a%02x%%3a%02x%%3a%02x.ipxe",
                 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        RB_ASSERT(render_boot_path_parse(again, m2) == 0 && memcmp(mac, m2, 6) == 0);
    }
    check_id(render_ks_path_parse, path);
    check_id(render_progress_path_parse, path);
    check_id(render_phone_home_path_parse, path);

    /* As a template: the check and the expansion agree. */
    template_error err;
    int r = template_check((const char *)data, size, &err);
    template_var vars[16];
    for (size_t i = 0; i < template_n_placeholders && i < ARRAY_SIZE(vars); i++) {
        vars[i] = (template_var){ template_placeholders[i].name, "v" };
    }
    char *out = NULL;
    int e = template_expand((const char *)data, size, vars, template_n_placeholders, &out, NULL);
    RB_ASSERT(r == 0 ? e == 0 : e == -EBADMSG);
    if (r < 0) {
        RB_ASSERT(err.line >= 1 && err.column >= 1 && strlen(err.message) < sizeof(err.message));
    }
    free(out);
    free(path);
    return 0;
}
