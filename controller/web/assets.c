/* web/assets: lookups in the generated table (see assets.h). */
#include "web/assets.h"

#include <string.h>

const web_asset *web_asset_find(const char *name)
{
    for (size_t i = 0; i < web_assets_count; i++) {
        if (strcmp(web_assets[i].name, name) == 0) {
            return &web_assets[i];
        }
    }
    return NULL;
}
