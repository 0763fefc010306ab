/* cli/render: what `status --json`, `events --json` and the tables print.
 * The JSON shapes are an interface for scripts, so they are held to golden
 * strings (compact here; the CLI indents the same document). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "render.h"

/* 2026-11-25T03:34:17.123Z */
#define T0 1795577657123ull

static char *dump(json_t *j)
{
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void test_status_json(void **state)
{
    Rackboot__V1__StatusRow a = RACKBOOT__V1__STATUS_ROW__INIT;
    a.host = (char[]){ "web17" };
    a.rack = (char[]){ "r1" };
    a.install_id = (char[]){ "7f0c1d2e-0000-4000-8000-000000000001" };
    a.profile = (char[]){ "el9" };
    a.state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_INSTALLING;
    a.phase = RACKBOOT__V1__PHASE__PHASE_STAGE2_PROGRESS;
    a.percent = 42;
    a.updated_unix_ms = T0;
    a.attempt = 1;
    a.message = (char[]){ "stage2 \"42%\"" };
    /* A host with no install: the optional fields are null, not missing. */
    Rackboot__V1__StatusRow b = RACKBOOT__V1__STATUS_ROW__INIT;
    b.host = (char[]){ "web18" };
    b.rack = (char[]){ "r1" };
    b.state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE;
    Rackboot__V1__StatusRow c = RACKBOOT__V1__STATUS_ROW__INIT;
    c.host = (char[]){ "web19" };
    c.rack = (char[]){ "r2" };
    c.install_id = (char[]){ "id19" };
    c.profile = (char[]){ "el9" };
    c.state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_TIMED_OUT;
    c.updated_unix_ms = T0 + 1000;
    c.attempt = 2;
    Rackboot__V1__StatusRow *rows[] = { &a, &b, &c };
    Rackboot__V1__StatusList l = RACKBOOT__V1__STATUS_LIST__INIT;
    l.n_rows = 3;
    l.rows = rows;

    char *s = dump(render_status_json(&l));
    assert_string_equal(
        s, "[{\"attempt\":1,\"host\":\"web17\",\"install_id\":\"7f0c1d2e-0000-4000-8000-"
           "000000000001\",\"message\":\"stage2 \\\"42%\\\"\",\"percent\":42,\"phase\":"
           "\"stage2_progress\",\"profile\":\"el9\",\"rack\":\"r1\",\"state\":\"installing\","
           "\"updated_at\":\"2026-11-25T03:34:17.123Z\"},"
           "{\"attempt\":0,\"host\":\"web18\",\"install_id\":null,\"message\":null,\"percent\":0,"
           "\"phase\":null,\"profile\":null,\"rack\":\"r1\",\"state\":\"none\",\"updated_at\":"
           "null},"
           "{\"attempt\":2,\"host\":\"web19\",\"install_id\":\"id19\",\"message\":null,"
           "\"percent\":0,\"phase\":null,\"profile\":\"el9\",\"rack\":\"r2\",\"state\":"
           "\"timed_out\",\"updated_at\":\"2026-11-25T03:34:18.123Z\"}]");
    free(s);

    /* An empty reply is an empty array, never null. */
    Rackboot__V1__StatusList empty = RACKBOOT__V1__STATUS_LIST__INIT;
    s = dump(render_status_json(&empty));
    assert_string_equal(s, "[]");
    free(s);
}

static void test_events_json(void **state)
{
    Rackboot__V1__EventRow a = RACKBOOT__V1__EVENT_ROW__INIT;
    a.seq = 41;
    a.time_unix_ms = T0;
    a.host = (char[]){ "web17" };
    a.install_id = (char[]){ "id17" };
    a.phase = RACKBOOT__V1__PHASE__PHASE_DHCP_BOUND;
    Rackboot__V1__EventRow b = RACKBOOT__V1__EVENT_ROW__INIT;
    b.seq = 42;
    b.time_unix_ms = T0 + 61001;
    b.host = (char[]){ "web17" };
    b.install_id = (char[]){ "id17" };
    b.phase = RACKBOOT__V1__PHASE__PHASE_INSTALLED;
    b.percent = 100;
    b.message = (char[]){ "anaconda: done" };
    Rackboot__V1__EventRow *rows[] = { &a, &b };
    Rackboot__V1__EventList l = RACKBOOT__V1__EVENT_LIST__INIT;
    l.n_events = 2;
    l.events = rows;
    l.last_seq = 42;

    char *s = dump(render_events_json(&l));
    assert_string_equal(
        s, "[{\"host\":\"web17\",\"install_id\":\"id17\",\"message\":null,\"percent\":0,"
           "\"phase\":\"dhcp_bound\",\"seq\":41,\"time\":\"2026-11-25T03:34:17.123Z\"},"
           "{\"host\":\"web17\",\"install_id\":\"id17\",\"message\":\"anaconda: done\","
           "\"percent\":100,\"phase\":\"installed\",\"seq\":42,\"time\":"
           "\"2026-11-25T03:35:18.124Z\"}]");
    free(s);
}

/* web17 in r1 at 2001:db8:1::17/64 with two MACs (static storage). */
static Rackboot__V1__Host host_web17(void)
{
    static uint8_t mac1[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 },
                   mac2[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x57 };
    static uint8_t addr[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 0x17 };
    static ProtobufCBinaryData macs[2] = { { 6, mac1 }, { 6, mac2 } };
    static char name[] = "web17", rack[] = "r1";
    Rackboot__V1__Host h = RACKBOOT__V1__HOST__INIT;
    h.name = name;
    h.rack = rack;
    h.n_macs = 2;
    h.macs = macs;
    h.address = (ProtobufCBinaryData){ 16, addr };
    h.prefix_length = 64;
    return h;
}

static void test_hosts_json_and_text(void **state)
{
    Rackboot__V1__Host h = host_web17();
    Rackboot__V1__Host *hosts[] = { &h };
    Rackboot__V1__HostList l = RACKBOOT__V1__HOST_LIST__INIT;
    l.n_hosts = 1;
    l.hosts = hosts;

    char *s = dump(render_hosts_json(&l));
    assert_string_equal(s, "[{\"address\":\"2001:db8:1::17\",\"bmc\":null,\"bmc_password_set\":"
                           "false,\"bmc_user\":null,\"duid\":null,\"firmware\":null,\"gateway\":"
                           "null,\"hostname\":null,\"macs\":[\"52:54:00:12:34:56\","
                           "\"52:54:00:12:34:57\"],\"name\":\"web17\",\"power_state\":null,"
                           "\"power_updated\":null,\"prefix\":64,\"rack\":\"r1\"}]");
    free(s);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    render_hosts_text(f, &l);
    fclose(f);
    assert_string_equal(text, "NAME   RACK  ADDRESS            GATEWAY  HOSTNAME  POWER  MACS\n"
                              "web17  r1    2001:db8:1::17/64  -        -         -      "
                              "52:54:00:12:34:56,52:54:00:12:34:57\n");
    free(text);
}

/* A host with a BMC: the listing's POWER, the JSON keys, the detail view;
 * the password itself nowhere (a request shown back with --json holds
 * one), only that one is set. */
static void test_hosts_bmc_never_shows_the_password(void **state)
{
    Rackboot__V1__Host h = host_web17();
    h.n_macs = 1;
    h.bmc_url = (char[]){ "ipmi://[2001:db8:ff::17]:623" };
    h.bmc_user = (char[]){ "admin" };
    h.bmc_password = (char[]){ "s3cr3t-Hunter2" };
    h.firmware = RACKBOOT__V1__FIRMWARE__FIRMWARE_UEFI;
    h.power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON;
    h.power_updated_unix_ms = T0;
    Rackboot__V1__Host g = h; /* a BMC whose state was never read */
    g.name = (char[]){ "web18" };
    g.bmc_password = (char[]){ "" };
    g.bmc_password_set = false;
    g.power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_UNSPECIFIED;
    g.power_updated_unix_ms = 0;
    Rackboot__V1__Host *hosts[] = { &h, &g };
    Rackboot__V1__HostList l = RACKBOOT__V1__HOST_LIST__INIT;
    l.n_hosts = 2;
    l.hosts = hosts;

    char *s = dump(render_hosts_json(&l));
    assert_null(strstr(s, "s3cr3t"));
    assert_null(strstr(s, "\"bmc_password\""));
    assert_non_null(strstr(s, "\"bmc\":\"ipmi://[2001:db8:ff::17]:623\",\"bmc_password_set\":true,"
                              "\"bmc_user\":\"admin\",\"duid\":null,\"firmware\":\"uefi\""));
    assert_non_null(strstr(s, "\"power_state\":\"on\",\"power_updated\":"
                              "\"2026-11-25T03:34:17.123Z\""));
    assert_non_null(strstr(s, "\"bmc_password_set\":false,\"bmc_user\":\"admin\""));
    assert_non_null(strstr(s, "\"power_state\":null,\"power_updated\":null"));
    free(s);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    render_hosts_text(f, &l);
    render_host_detail_text(f, &h);
    render_host_detail_text(f, &g);
    fclose(f);
    assert_null(strstr(text, "s3cr3t"));
    assert_non_null(strstr(text, "HOSTNAME  POWER    MACS\n"));
    assert_non_null(
        strstr(text, "\nweb17  r1    2001:db8:1::17/64  -        -         on       52:"));
    assert_non_null(
        strstr(text, "\nweb18  r1    2001:db8:1::17/64  -        -         unknown  52:"));
    assert_non_null(strstr(text, "firmware:  uefi\n"
                                 "bmc:       ipmi://[2001:db8:ff::17]:623\n"
                                 "bmc_user:  admin\n"
                                 "bmc_password: set\n"
                                 "power:     on (read 2026-11-25T03:34:17.123Z)\n"));
    assert_non_null(strstr(text, "bmc_password: not set\npower:     unknown (never read)\n"));
    free(text);
}

/* rackboot power's rows: done ones ok or failed; the rest queued (no
 * wait) or timed_out (the wait ended). */
static void test_power_rows(void **state)
{
    Rackboot__V1__PowerRow a = RACKBOOT__V1__POWER_ROW__INIT;
    a.id = (char[]){ "p1" };
    a.host = (char[]){ "web17" };
    a.action = RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE;
    a.done = true;
    a.ok = true;
    a.power_state = RACKBOOT__V1__POWER_STATE__POWER_STATE_ON;
    a.updated_unix_ms = T0;
    Rackboot__V1__PowerRow b = RACKBOOT__V1__POWER_ROW__INIT;
    b.id = (char[]){ "p2" };
    b.host = (char[]){ "web18" };
    b.action = RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE;
    b.done = true;
    b.message = (char[]){ "BMC did not answer" };
    Rackboot__V1__PowerRow c = RACKBOOT__V1__POWER_ROW__INIT;
    c.id = (char[]){ "p3" };
    c.host = (char[]){ "web19" };
    c.action = RACKBOOT__V1__POWER_ACTION__POWER_ACTION_CYCLE;
    Rackboot__V1__PowerRow *rows[] = { &a, &b, &c };
    Rackboot__V1__PowerList l = RACKBOOT__V1__POWER_LIST__INIT;
    l.n_rows = 3;
    l.rows = rows;

    char *s = dump(render_power_json(&l, true));
    assert_string_equal(
        s, "[{\"action\":\"cycle\",\"done\":true,\"host\":\"web17\",\"id\":\"p1\",\"message\":"
           "null,\"ok\":true,\"power_state\":\"on\",\"result\":\"ok\",\"updated_at\":"
           "\"2026-11-25T03:34:17.123Z\"},"
           "{\"action\":\"cycle\",\"done\":true,\"host\":\"web18\",\"id\":\"p2\",\"message\":"
           "\"BMC did not answer\",\"ok\":false,\"power_state\":null,\"result\":\"failed\","
           "\"updated_at\":null},"
           "{\"action\":\"cycle\",\"done\":false,\"host\":\"web19\",\"id\":\"p3\",\"message\":"
           "null,\"ok\":false,\"power_state\":null,\"result\":\"timed_out\",\"updated_at\":"
           "null}]");
    free(s);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    render_power_text(f, &l, false);
    fclose(f);
    assert_string_equal(text, "HOST   ACTION  RESULT  POWER  MESSAGE\n"
                              "web17  cycle   ok      on     \n"
                              "web18  cycle   failed  -      BMC did not answer\n"
                              "web19  cycle   queued  -      \n");
    free(text);
}

static void test_status_text(void **state)
{
    Rackboot__V1__StatusRow a = RACKBOOT__V1__STATUS_ROW__INIT;
    a.host = (char[]){ "web17" };
    a.rack = (char[]){ "r1" };
    a.install_id = (char[]){ "id17" };
    a.profile = (char[]){ "el9" };
    a.state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_BOOTING;
    a.phase = RACKBOOT__V1__PHASE__PHASE_KERNEL_FETCHED;
    a.updated_unix_ms = T0;
    Rackboot__V1__StatusRow *rows[] = { &a };
    Rackboot__V1__StatusList l = RACKBOOT__V1__STATUS_LIST__INIT;
    l.n_rows = 1;
    l.rows = rows;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    render_status_text(f, &l);
    fclose(f);
    assert_string_equal(
        text, "HOST   RACK  STATE    PHASE           %  PROFILE  UPDATED                   "
              "MESSAGE\n"
              "web17  r1    booting  kernel_fetched  0  el9      2026-11-25T03:34:17.123Z  "
              "\n");
    free(text);
}

/* What f printed, as a string (the caller frees it). */
typedef struct capture {
    char *text;
    size_t len;
    FILE *f;
} capture;

static void capture_open(capture *c)
{
    *c = (capture){ 0 };
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

static char *capture_close(capture *c)
{
    fclose(c->f);
    return c->text;
}

static Rackboot__V1__StatusRow status_row(const char *host, const char *message)
{
    Rackboot__V1__StatusRow r = RACKBOOT__V1__STATUS_ROW__INIT;
    r.host = (char *)(uintptr_t)host;
    r.rack = (char *)(uintptr_t) "r1";
    r.state = RACKBOOT__V1__INSTALL_STATE__INSTALL_STATE_NONE;
    r.message = (char *)(uintptr_t)message;
    return r;
}

/* A listing printed page by page is, for JSON, byte for byte the whole
 * array as output_print() prints it (nested arrays included), never
 * "[" twice; and "[]" when nothing came. */
static void test_stream_json_is_one_array(void **state)
{
    uint8_t mac1[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, mac2[6] = { 0x52, 0x54, 0, 1, 2, 3 };
    uint8_t addr[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 0x17 };
    ProtobufCBinaryData macs[2] = { { 6, mac1 }, { 6, mac2 } };
    Rackboot__V1__Host h[3];
    Rackboot__V1__Host *hp[3];
    for (size_t i = 0; i < 3; i++) {
        rackboot__v1__host__init(&h[i]);
        h[i].name = (char *)(uintptr_t)(const char *[]){ "a1", "b22", "c333" }[i];
        h[i].rack = (char *)(uintptr_t) "r1";
        h[i].n_macs = i + 1 < 2 ? 1 : 2;
        h[i].macs = macs;
        h[i].address = (ProtobufCBinaryData){ 16, addr };
        h[i].prefix_length = 64;
        hp[i] = &h[i];
    }
    Rackboot__V1__HostList whole = RACKBOOT__V1__HOST_LIST__INIT;
    whole.n_hosts = 3;
    whole.hosts = hp;
    capture want, got;
    render_stream s;
    /* pages of 2, of 0 (an empty last page) and of 1; JSON, YAML and names
     * alike */
    Rackboot__V1__HostList p1 = whole, p2 = whole, p3 = whole;
    p1.n_hosts = 2;
    p2.n_hosts = 0;
    p3.n_hosts = 1;
    p3.hosts = hp + 2;
    static const output_format formats[] = { OUTPUT_JSON, OUTPUT_YAML, OUTPUT_NAME };
    for (size_t f = 0; f < 3; f++) {
        capture_open(&want);
        assert_int_equal(
            output_print(want.f, formats[f], render_hosts_json(&whole), RENDER_NAME_HOSTS), 0);
        capture_close(&want);
        capture_open(&got);
        render_stream_init(&s, got.f, formats[f]);
        assert_int_equal(render_hosts_page(&s, &p1), 0);
        assert_int_equal(render_hosts_page(&s, &p2), 0);
        assert_int_equal(render_hosts_page(&s, &p3), 0);
        assert_int_equal(render_stream_end(&s), 0);
        capture_close(&got);
        assert_string_equal(got.text, want.text);
        if (formats[f] == OUTPUT_NAME) {
            assert_string_equal(got.text, "a1\nb22\nc333\n");
        }
        free(got.text);
        free(want.text);
    }

    /* status and events the same way */
    Rackboot__V1__StatusRow a = status_row("web1", "one"), b = status_row("web2", NULL);
    Rackboot__V1__StatusRow *rows[] = { &a, &b };
    Rackboot__V1__StatusList sl = RACKBOOT__V1__STATUS_LIST__INIT;
    sl.n_rows = 2;
    sl.rows = rows;
    capture_open(&want);
    assert_int_equal(output_print(want.f, OUTPUT_JSON, render_status_json(&sl), NULL), 0);
    capture_close(&want);
    Rackboot__V1__StatusList s1 = sl, s2 = sl;
    s1.n_rows = 1;
    s2.n_rows = 1;
    s2.rows = rows + 1;
    capture_open(&got);
    render_stream_init(&s, got.f, OUTPUT_JSON);
    render_status_page(&s, &s1);
    render_status_page(&s, &s2);
    assert_int_equal(render_stream_end(&s), 0);
    capture_close(&got);
    assert_string_equal(got.text, want.text);
    free(got.text);
    free(want.text);

    Rackboot__V1__EventList el = RACKBOOT__V1__EVENT_LIST__INIT;
    capture_open(&got);
    render_stream_init(&s, got.f, OUTPUT_JSON);
    render_events_page(&s, &el);
    assert_int_equal(render_stream_end(&s), 0);
    capture_close(&got);
    assert_string_equal(got.text, "[]\n");
    free(got.text);
}

/* A table printed page by page: one header; the first page laid out as
 * the whole-list function lays it out; a later page's columns at least as
 * wide as before, wider only for a wider cell. */
static void test_stream_table_pages(void **state)
{
    Rackboot__V1__StatusRow a = status_row("web1", "short"), b = status_row("web2", ""),
                            c = status_row("a-much-longer-name", "x"), d = status_row("z", "");
    Rackboot__V1__StatusRow *r1[] = { &a, &b }, *r2[] = { &c }, *r3[] = { &d };
    Rackboot__V1__StatusList p1 = RACKBOOT__V1__STATUS_LIST__INIT, p2 = p1, p3 = p1;
    p1.n_rows = 2;
    p1.rows = r1;
    p2.n_rows = 1;
    p2.rows = r2;
    p3.n_rows = 1;
    p3.rows = r3;

    capture one;
    capture_open(&one);
    render_status_text(one.f, &p1);
    capture_close(&one);

    capture got;
    capture_open(&got);
    render_stream s;
    render_stream_init(&s, got.f, OUTPUT_TABLE);
    assert_int_equal(render_status_page(&s, &p1), 0);
    assert_int_equal(render_status_page(&s, &p2), 0);
    assert_int_equal(render_status_page(&s, &p3), 0);
    assert_int_equal(render_stream_end(&s), 0);
    assert_int_equal(s.rows, 4);
    capture_close(&got);

    assert_int_equal(strncmp(got.text, one.text, strlen(one.text)), 0);
    const char *rest = got.text + strlen(one.text);
    assert_string_equal(rest, "a-much-longer-name  r1    none   -      0  -        -        x\n"
                              "z                   r1    none   -      0  -        -        \n");
    assert_null(strstr(got.text + 1, "HOST "));
    free(got.text);
    free(one.text);
}

/* YAML quotes every string a YAML 1.1 reader would take for something
 * else (bools, nulls, numbers, base-60 MACs, times), keeps names plain,
 * writes text of several lines as a literal block, and sorts keys. */
static void test_yaml_scalars(void **state)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:i, s:n, s:[], "
                          "s:{}}",
                          "name", "web17", "yes", "yes", "off", "Off", "num", "123", "mac",
                          "52:54:00:12:34:56", "time", "2026-12-07T01:02:03.000Z", "colon", "a: b",
                          "empty", "", "path", "/var/lib/x", "text", "line one\nline two\n", "flag",
                          1, "count", 42, "none", "list", "map");
    assert_non_null(j);
    capture got;
    capture_open(&got);
    assert_int_equal(output_print(got.f, OUTPUT_YAML, j, NULL), 0);
    capture_close(&got);
    assert_string_equal(got.text, "colon: 'a: b'\n"
                                  "count: 42\n"
                                  "empty: ''\n"
                                  "flag: true\n"
                                  "list: []\n"
                                  "mac: '52:54:00:12:34:56'\n"
                                  "map: {}\n"
                                  "name: web17\n"
                                  "none: null\n"
                                  "num: '123'\n"
                                  "'off': 'Off'\n"
                                  "path: /var/lib/x\n"
                                  "text: |\n"
                                  "  line one\n"
                                  "  line two\n"
                                  "time: '2026-12-07T01:02:03.000Z'\n"
                                  "'yes': 'yes'\n");
    free(got.text);
    assert_int_equal(output_print(stdout, OUTPUT_TABLE, json_object(), NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_events_json),
        cmocka_unit_test(test_hosts_json_and_text),
        cmocka_unit_test(test_hosts_bmc_never_shows_the_password),
        cmocka_unit_test(test_power_rows),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_stream_json_is_one_array),
        cmocka_unit_test(test_stream_table_pages),
        cmocka_unit_test(test_yaml_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
