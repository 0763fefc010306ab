/* Fuzzes `rackboot hosts import FILE.csv` (cli/hosts_csv.c): the bytes are
 * a CSV inventory export, parsed without and with --rack. A parse fails
 * exactly when there is a problem to report, and what it accepts is what the
 * controller would accept: every host passes the wire validator the CLI's
 * request must pass (proto/rbproto.c) and no name, MAC or address is given to
 * two hosts. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "hosts_csv.h"
#include "pb.h"
#include "rbproto.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool bytes_equal(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void check(const Rackboot__V1__HostsAddRequest *req, const char *rack)
{
    RB_ASSERT(req->n_hosts > 0);
    for (size_t i = 0; i < req->n_hosts; i++) {
        const Rackboot__V1__Host *h = req->hosts[i];
        /* What the CSV parser accepts, the wire accepts: the import never
         * fails at rbproto_pack() instead of naming the line. */
        RB_ASSERT(rbproto_validate_host(h) == 0);
        if (rack) {
            RB_ASSERT(streq(h->rack, rack));
        }
        /* Quadratic, so only for files of a realistic size. */
        for (size_t j = 0; j < i && req->n_hosts <= 256; j++) {
            const Rackboot__V1__Host *o = req->hosts[j];
            RB_ASSERT(!streq(h->name, o->name));
            RB_ASSERT(!bytes_equal(&h->address, &o->address));
            for (size_t a = 0; a < h->n_macs; a++) {
                for (size_t b = 0; b < o->n_macs; b++) {
                    RB_ASSERT(!bytes_equal(&h->macs[a], &o->macs[b]));
                }
            }
        }
    }
}

static void parse_as(const char *text, size_t len, const char *rack)
{
    diag *d = diag_new();
    Rackboot__V1__HostsAddRequest *req = cli_pb_new(&rackboot__v1__hosts_add_request__descriptor);
    RB_ASSERT(d != NULL && req != NULL);
    int r = hosts_csv_parse("hosts.csv", text, len, rack, d, req);
    if (r < 0) {
        RB_ASSERT(r == -ENOMEM || (r == -EINVAL && diag_count(d) > 0));
    } else {
        RB_ASSERT(r == 0 && diag_count(d) == 0);
        check(req, rack);
    }
    cli_pb_free(req);
    diag_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    /* The text is the file's bytes as read, not a C string. */
    char *text = malloc(size ? size : 1);
    RB_ASSERT(text != NULL);
    memcpy(text, data, size);
    parse_as(text, size, NULL);
    parse_as(text, size, "r1");
    free(text);
    return 0;
}
