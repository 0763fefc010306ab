/* Fuzzes the INI reader: any bytes must parse or fail cleanly, every entry
 * of a parsed document must be a NUL-terminated string of the documented
 * shape, and every error must be in the diag. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "ini.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    diag *d = diag_new();
    ini_doc *doc = NULL;
    if (!d) {
        return 0;
    }
    int r = ini_parse("fuzz.conf", data, size, d, &doc);
    if (r == -EBADMSG) {
        /* An error result always comes with at least one message. */
        RB_ASSERT(diag_count(d) > 0 && doc == NULL);
    }
    if (r == 0) {
        RB_ASSERT(doc != NULL && diag_count(d) == 0);
        unsigned last_line = 0;
        for (size_t i = 0; i < doc->n_sections; i++) {
            const ini_section *s = &doc->sections[i];
            const char *kind, *arg;
            size_t kind_len;
            RB_ASSERT(s->name[0] != '\0');
            RB_ASSERT(s->line > last_line);
            RB_ASSERT(ini_section_split(s->name, &kind, &kind_len, &arg) == 0);
            RB_ASSERT(kind_len > 0 && (arg == NULL || arg[0] != '\0'));
            RB_ASSERT(ini_doc_find_section(doc, s->name) != NULL);
            last_line = s->line;
            for (size_t j = 0; j < s->n_entries; j++) {
                const ini_entry *e = &s->entries[j];
                size_t klen = strlen(e->key);
                size_t vlen = strlen(e->value);
                RB_ASSERT(klen > 0 && strspn(e->key, "abcdefghijklmnopqrstuvwxyz"
                                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "0123456789._-") == klen);
                /* Values are trimmed. */
                RB_ASSERT(vlen == 0 ||
                          (!strchr(" \t", e->value[0]) && !strchr(" \t", e->value[vlen - 1])));
                RB_ASSERT(e->line > last_line);
                last_line = e->line;
                RB_ASSERT(ini_section_find(s, e->key) != NULL);
            }
        }
    }
    ini_doc_free(doc);
    diag_free(d);
    return 0;
}
