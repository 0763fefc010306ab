#include "hosts_csv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileio.h"
#include "hashmap.h"
#include "parse.h"
#include "pb.h"
#include "rbproto.h"
#include "util.h"
#include "values.h"

enum {
    COL_NAME,
    COL_MAC,
    COL_RACK,
    COL_ADDRESS,
    COL_PREFIX,
    COL_GATEWAY,
    COL_HOSTNAME,
    COL_BMC,
    COL_BMC_USER,
    COL_BMC_PASSWORD_FILE,
    COL_FIRMWARE,
    N_COLS,
    MAX_FIELDS = 64, /* a header wider than this is not a hosts file */
};

static const char *const col_names[N_COLS] = {
    [COL_NAME] = "name",         [COL_MAC] = "mac",
    [COL_RACK] = "rack",         [COL_ADDRESS] = "address",
    [COL_PREFIX] = "prefix",     [COL_GATEWAY] = "gateway",
    [COL_HOSTNAME] = "hostname", [COL_BMC] = "bmc",
    [COL_BMC_USER] = "bmc_user", [COL_BMC_PASSWORD_FILE] = "bmc_password_file",
    [COL_FIRMWARE] = "firmware",
};

typedef struct csv_parser {
    const char *path;
    diag *d;
    unsigned errors;
} csv_parser;

#define problem(p, line, ...)                                                                      \
    do {                                                                                           \
        diag_add((p)->d, (p)->path, (line), __VA_ARGS__);                                          \
        (p)->errors++;                                                                             \
    } while (0)

typedef struct csv_row {
    char *field[MAX_FIELDS];
    size_t n;
} csv_row;

static void row_clear(csv_row *row)
{
    for (size_t i = 0; i < row->n; i++) {
        free(row->field[i]);
    }
    row->n = 0;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits one line (no line end) into fields. -EBADMSG with a problem
 * reported, -ENOMEM. */
static int split_line(csv_parser *p, unsigned line, const char *s, size_t len, csv_row *row)
{
    size_t i = 0;
    for (;;) {
        while (i < len && blank(s[i])) {
            i++;
        }
        if (row->n == MAX_FIELDS) {
            problem(p, line, "more than %d fields", MAX_FIELDS);
            return -EBADMSG;
        }
        char *out = malloc(len - i + 1);
        if (!out) {
            return -ENOMEM;
        }
        row->field[row->n++] = out;
        size_t o = 0;
        if (i < len && s[i] == '"') {
            /* RFC 4180 §2: a quoted field; "" is one quote. */
            i++;
            for (;;) {
                if (i == len) {
                    problem(p, line,
                            "field %zu: unterminated quoted field (fields cannot span "
                            "lines)",
                            row->n);
                    return -EBADMSG;
                }
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = s[i++];
            }
            while (i < len && blank(s[i])) {
                i++;
            }
            if (i < len && s[i] != ',') {
                problem(p, line, "field %zu: text after the closing quote", row->n);
                return -EBADMSG;
            }
        } else {
            while (i < len && s[i] != ',') {
                if (s[i] == '"') {
                    problem(p, line,
                            "field %zu: a quote inside an unquoted field (quote the "
                            "whole field and double the quote)",
                            row->n);
                    return -EBADMSG;
                }
                out[o++] = s[i++];
            }
            while (o > 0 && blank(out[o - 1])) {
                o--;
            }
        }
        out[o] = '\0';
        if (memchr(out, '\0', o)) {
            problem(p, line, "field %zu: contains a NUL byte", row->n);
            return -EBADMSG;
        }
        if (i == len) {
            return 0;
        }
        i++; /* the comma */
    }
}

static int parse_header(csv_parser *p, unsigned line, const csv_row *row, const char *rack,
                        int col_of[N_COLS])
{
    for (size_t c = 0; c < N_COLS; c++) {
        col_of[c] = -1;
    }
    for (size_t f = 0; f < row->n; f++) {
        size_t c = 0;
        while (c < N_COLS && strcasecmp(row->field[f], col_names[c]) != 0) {
            c++;
        }
        if (c == N_COLS && strcasestr(row->field[f], "password")) {
            problem(p, line,
                    "column \"%s\": a password is never read from an inventory; put it in a "
                    "file of its own and name the file in a bmc_password_file column",
                    row->field[f]);
        } else if (c == N_COLS) {
            problem(p, line,
                    "unknown column \"%s\" (expected name, mac, rack, address, prefix, gateway, "
                    "hostname, bmc, bmc_user, bmc_password_file, firmware)",
                    row->field[f]);
        } else if (col_of[c] >= 0) {
            problem(p, line, "column \"%s\" given twice", col_names[c]);
        } else {
            col_of[c] = (int)f;
        }
    }
    static const int required[] = { COL_NAME, COL_MAC, COL_RACK, COL_ADDRESS };
    for (size_t k = 0; k < ARRAY_SIZE(required); k++) {
        int c = required[k];
        if (col_of[c] < 0 && !(c == COL_RACK && rack)) {
            problem(p, line, "missing column \"%s\" (the header needs name, mac, rack, address%s)",
                    col_names[c], c == COL_RACK ? "; or give --rack" : "");
        }
    }
    return p->errors ? -EBADMSG : 0;
}

static const char *cell(const csv_row *row, const int col_of[N_COLS], int c)
{
    return col_of[c] >= 0 ? row->field[col_of[c]] : "";
}

/* The BMC columns of a row into h: bmc, bmc_user, the password read from
 * the file bmc_password_file names (relative to the CSV file), firmware.
 * A URL is never quoted back (it may carry credentials, which the parser
 * refuses); a password file's reasons name the file, not its content. */
static int parse_bmc_cells(csv_parser *p, unsigned line, const csv_row *row,
                           const int col_of[N_COLS], Rackboot__V1__Host *h)
{
    char why_buf[PATH_MAX + 160];
    const char *why;
    int r = 0;
    const char *url = cell(row, col_of, COL_BMC);
    if (url[0]) {
        if ((why = cli_check_bmc_url(url, why_buf, sizeof(why_buf)))) {
            problem(p, line, "bmc: %s", why);
        } else {
            r = cli_pb_set_string(&h->bmc_url, url);
        }
    }
    const char *v = cell(row, col_of, COL_BMC_USER);
    if (r == 0 && v[0]) {
        if ((why = cli_check_bmc_user(v))) {
            problem(p, line, "bmc_user: %s", why);
        } else {
            r = cli_pb_set_string(&h->bmc_user, v);
        }
    }
    v = cell(row, col_of, COL_BMC_PASSWORD_FILE);
    if (r == 0 && v[0]) {
        _cleanup_free_ char *path = fileio_path_relative(p->path, v);
        char *pw = NULL;
        r = path ? model_bmc_password_read_file(path, &pw, why_buf, sizeof(why_buf)) : -ENOMEM;
        if (r == 0) {
            r = cli_pb_set_string(&h->bmc_password, pw);
            model_bmc_password_free(pw);
        } else if (r != -ENOMEM) {
            problem(p, line, "bmc_password_file: %s", why_buf);
            r = 0;
        }
    }
    if (r == 0 && !url[0] && (cell(row, col_of, COL_BMC_USER)[0] || v[0])) {
        problem(p, line, "bmc_user and bmc_password_file need a bmc URL");
    }
    v = cell(row, col_of, COL_FIRMWARE);
    if (r == 0 && v[0] && (why = cli_check_firmware(v, &h->firmware))) {
        problem(p, line, "firmware \"%s\": %s", v, why);
    }
    return r;
}

/* One data row into a new Host, or NULL after reporting its problems. */
static int parse_row(csv_parser *p, unsigned line, const csv_row *row, const int col_of[N_COLS],
                     const char *rack, Rackboot__V1__Host **ret)
{
    unsigned before = p->errors;
    Rackboot__V1__Host *h = cli_pb_new(&rackboot__v1__host__descriptor);
    if (!h) {
        return -ENOMEM;
    }
    int r = 0;
    const char *why;

    const char *name = cell(row, col_of, COL_NAME);
    if ((why = cli_check_name(name))) {
        problem(p, line, "name \"%s\": %s", name, why);
    } else {
        r = cli_pb_set_string(&h->name, name);
    }

    const char *macs = cell(row, col_of, COL_MAC);
    size_t n_macs = 0;
    for (const char *s = macs; r == 0 && *s;) {
        while (*s && blank(*s)) {
            s++;
        }
        size_t wl = 0;
        while (s[wl] && !blank(s[wl])) {
            wl++;
        }
        if (wl == 0) {
            break;
        }
        _cleanup_free_ char *word = memdup_str(s, wl);
        s += wl;
        uint8_t mac[6];
        if (!word) {
            r = -ENOMEM;
        } else if ((why = cli_check_mac(word, mac))) {
            problem(p, line, "mac \"%s\": %s", word, why);
        } else if (n_macs == RBPROTO_MAX_MACS) {
            problem(p, line, "mac: at most %u MACs per host", RBPROTO_MAX_MACS);
            break;
        } else {
            bool dup = false;
            for (size_t k = 0; k < h->n_macs; k++) {
                dup |= memcmp(h->macs[k].data, mac, 6) == 0;
            }
            if (dup) {
                problem(p, line, "mac %s listed twice", word);
            } else {
                r = cli_pb_add_bytes(&h->macs, &h->n_macs, mac, 6);
            }
            n_macs++;
        }
    }
    if (n_macs == 0 && macs[0] == '\0') {
        problem(p, line, "mac: empty (one or more MACs separated by blanks)");
    }

    const char *row_rack = cell(row, col_of, COL_RACK);
    if (row_rack[0] == '\0' && rack) {
        row_rack = rack;
    }
    if (r == 0) {
        if ((why = cli_check_name(row_rack))) {
            problem(p, line, "rack \"%s\": %s", row_rack, why);
        } else if (rack && !streq(row_rack, rack)) {
            problem(p, line, "rack %s, but --rack says %s", row_rack, rack);
        } else {
            r = cli_pb_set_string(&h->rack, row_rack);
        }
    }

    struct in6_addr a;
    const char *v = cell(row, col_of, COL_ADDRESS);
    if (r == 0) {
        if (v[0] == '\0') {
            problem(p, line, "address: empty");
        } else if ((why = cli_check_host_address(v, &a))) {
            problem(p, line, "address \"%s\": %s", v, why);
        } else {
            r = cli_pb_set_bytes(&h->address, &a, sizeof(a));
        }
    }

    v = cell(row, col_of, COL_PREFIX);
    h->prefix_length = 64;
    if (v[0] && (why = cli_check_prefix(v, &h->prefix_length))) {
        problem(p, line, "prefix \"%s\": %s", v, why);
    }

    v = cell(row, col_of, COL_GATEWAY);
    if (r == 0 && v[0]) {
        if ((why = cli_check_gateway(v, &a))) {
            problem(p, line, "gateway \"%s\": %s", v, why);
        } else {
            r = cli_pb_set_bytes(&h->gateway, &a, sizeof(a));
        }
    }

    v = cell(row, col_of, COL_HOSTNAME);
    if (r == 0 && v[0]) {
        if ((why = cli_check_hostname(v))) {
            problem(p, line, "hostname \"%s\": %s", v, why);
        } else {
            r = cli_pb_set_string(&h->hostname, v);
        }
    }

    if (r == 0) {
        r = parse_bmc_cells(p, line, row, col_of, h);
    }

    if (r < 0 || p->errors != before) {
        cli_pb_free(h);
        return r < 0 ? r : -EBADMSG;
    }
    *ret = h;
    return 0;
}

int hosts_csv_parse(const char *path, const char *text, size_t len, const char *rack, diag *d,
                    Rackboot__V1__HostsAddRequest *into)
{
    csv_parser p = { .path = path, .d = d };
    csv_row row = { 0 };
    int col_of[N_COLS];
    bool have_header = false;
    size_t n_fields = 0;
    unsigned line = 0;
    int r = 0;
    /* name → line and MAC → line of first use, to name both lines of a
     * clash. Keys point into the hosts of `into`, which outlive the maps. */
    hashmap *names = NULL, *macs = NULL, *addrs = NULL;
    unsigned *lines = NULL; /* line of each host appended, by index */
    size_t first_host = into->n_hosts;
    if (hashmap_new(1024, &names) < 0 || hashmap_new(1024, &macs) < 0 ||
        hashmap_new(1024, &addrs) < 0) {
        r = -ENOMEM;
        goto out;
    }

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + pos;
        size_t l = end - pos;
        pos = nl ? end + 1 : len;
        line++;
        if (l > 0 && s[l - 1] == '\r') {
            l--;
        }
        size_t k = 0;
        while (k < l && blank(s[k])) {
            k++;
        }
        if (k == l || s[k] == '#') {
            continue;
        }
        row_clear(&row);
        r = split_line(&p, line, s, l, &row);
        if (r == -ENOMEM) {
            goto out;
        }
        if (r < 0) {
            r = 0;
            if (!have_header) {
                goto out; /* without a header no row can be checked */
            }
            continue;
        }
        if (!have_header) {
            if (parse_header(&p, line, &row, rack, col_of) < 0) {
                goto out;
            }
            have_header = true;
            n_fields = row.n;
            continue;
        }
        if (row.n != n_fields) {
            problem(&p, line, "%zu fields, but the header has %zu", row.n, n_fields);
            continue;
        }
        if (into->n_hosts - first_host >= RBPROTO_MAX_ROWS) {
            problem(&p, line, "more than %u hosts in one file", RBPROTO_MAX_ROWS);
            break;
        }
        Rackboot__V1__Host *h = NULL;
        r = parse_row(&p, line, &row, col_of, rack, &h);
        if (r == -ENOMEM) {
            goto out;
        }
        r = 0;
        if (!h) {
            continue;
        }
        size_t idx = into->n_hosts;
        unsigned *grown = realloc(lines, (idx - first_host + 1) * sizeof(*lines));
        if (!grown || cli_pb_add_message((void ***)&into->hosts, &into->n_hosts, h) < 0) {
            if (grown) {
                lines = grown;
            }
            cli_pb_free(h);
            r = -ENOMEM;
            goto out;
        }
        lines = grown;
        lines[idx - first_host] = line;
        void *prev = hashmap_get(names, h->name, strlen(h->name));
        if (prev) {
            problem(&p, line, "host %s given twice (first on line %u)", h->name,
                    lines[(uintptr_t)prev - 1 - first_host]);
        } else if (hashmap_put(names, h->name, strlen(h->name), (void *)(uintptr_t)(idx + 1)) < 0) {
            r = -ENOMEM;
            goto out;
        }
        for (size_t m = 0; m < h->n_macs; m++) {
            prev = hashmap_get(macs, h->macs[m].data, 6);
            if (prev) {
                const Rackboot__V1__Host *other = into->hosts[(uintptr_t)prev - 1];
                char text_mac[FORMAT_MAC_LEN];
                format_mac(h->macs[m].data, text_mac);
                problem(&p, line, "mac %s of host %s is already used by host %s (line %u)",
                        text_mac, h->name, other->name, lines[(uintptr_t)prev - 1 - first_host]);
            } else if (hashmap_put(macs, h->macs[m].data, 6, (void *)(uintptr_t)(idx + 1)) < 0) {
                r = -ENOMEM;
                goto out;
            }
        }
        /* One address, one machine: both hosts would be answered with it. */
        if (h->address.len == 16) {
            prev = hashmap_get(addrs, h->address.data, 16);
            if (prev) {
                const Rackboot__V1__Host *other = into->hosts[(uintptr_t)prev - 1];
                char text_addr[INET6_ADDRSTRLEN];
                inet_ntop(AF_INET6, h->address.data, text_addr, sizeof(text_addr));
                problem(&p, line, "address %s of host %s is already used by host %s (line %u)",
                        text_addr, h->name, other->name, lines[(uintptr_t)prev - 1 - first_host]);
            } else if (hashmap_put(addrs, h->address.data, 16, (void *)(uintptr_t)(idx + 1)) < 0) {
                r = -ENOMEM;
                goto out;
            }
        }
    }
    if (!have_header && p.errors == 0) {
        problem(&p, 0, "no header line (expected name,mac,rack,address...)");
    } else if (have_header && p.errors == 0 && into->n_hosts == first_host) {
        problem(&p, 0, "no hosts after the header");
    }
out:
    row_clear(&row);
    free(lines);
    hashmap_free(names);
    hashmap_free(macs);
    hashmap_free(addrs);
    if (r == 0 && p.errors) {
        r = -EINVAL;
    }
    return r;
}

int hosts_csv_read(const char *path, const char *rack, diag *d, Rackboot__V1__HostsAddRequest *into)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = fileio_read_all(path, HOSTS_CSV_MAX_FILE, (void **)&text, &len);
    if (r < 0) {
        diag_add(d, path, 0, "cannot read: %s", errstr(r));
        return r;
    }
    return hosts_csv_parse(path, text, len, rack, d, into);
}
