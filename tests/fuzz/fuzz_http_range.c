/* Fuzzes the HTTP header helpers of http/range: any text must give
 * an answer without reading out of bounds, and a partial answer must lie
 * inside the entity. Input: 8 bytes of entity size (little-endian), then the
 * header text; the same text is tried as Range, If-None-Match and If-Range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) {
        return 0;
    }
    uint64_t entity = 0;
    for (int i = 7; i >= 0; i--) {
        entity = entity << 8 | data[i];
    }
    /* Small sizes are where the edge cases are; keep most inputs there. */
    if (data[7] & 0x80) {
        entity &= 0xffff;
    }
    char *text = memdup_str(data + 8, size - 8);
    if (!text) {
        return 0;
    }
    http_range r;
    http_range_result res = http_range_parse(text, entity, &r);
    RB_ASSERT(res == HTTP_RANGE_IGNORE || res == HTTP_RANGE_PARTIAL ||
              res == HTTP_RANGE_UNSATISFIABLE);
    if (res == HTTP_RANGE_PARTIAL) {
        RB_ASSERT(r.length > 0);
        RB_ASSERT(r.offset < entity);
        RB_ASSERT(r.length <= entity - r.offset);
    }
    static const char *const etags[] = { "\"abc\"", "W/\"abc\"", "\"\"", "\"0-1-2\"" };
    for (size_t i = 0; i < ARRAY_SIZE(etags); i++) {
        (void)http_if_none_match(text, etags[i]);
        (void)http_if_range_ok(text, etags[i]);
    }
    /* Every tag matches itself, alone and listed after the input. */
    RB_ASSERT(http_if_none_match("\"abc\"", "\"abc\""));
    free(text);
    return 0;
}
