/* web/assets: the web view's files (controller/web/assets/), built into the
 * controller by embed.cmake: pages, style sheet, script. Read-only data. */
#pragma once

#include <stddef.h>

typedef struct web_asset {
    const char *name; /* "hosts.html" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;       /* without the NUL embed.cmake appends */
    const char *etag; /* quoted, from the file's SHA-256 */
} web_asset;

/* The asset named `name` (a file name, no '/'), or NULL. */
const web_asset *web_asset_find(const char *name);

/* The table embed.cmake generates. */
extern const web_asset web_assets[];
extern const size_t web_assets_count;
