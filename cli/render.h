/* How the CLI shows replies: aligned tables for people; for scripts, a
 * JSON tree per listing that output.h prints as JSON, YAML or names. Pure
 * functions of the reply, so the unit tests hold golden output.
 *
 * JSON shapes (an interface, kept stable). Absent optional
 * values are null, never missing keys; times are RFC 3339 UTC with
 * milliseconds ("2026-11-25T03:34:17.123Z"); enums are lower-case strings
 * (rbproto_*_to_string); MACs "52:54:00:12:34:56"; digests lower-case hex.
 *   hosts:    [{name, rack, macs[], address, prefix, gateway, hostname, duid,
 *               bmc, bmc_user, bmc_password_set, firmware, power_state,
 *               power_updated}] (never a password: whether one is set)
 *   racks:    [{rack, agent, agent_version, last_seen, generation,
 *               acked_generation, hosts, active_installs, cache_bytes,
 *               cache_limit_bytes}] (cache_*: null until the agent
 *               reported; cache_limit_bytes null also without a limit)
 *   profiles: [{name, images[{name, kind, url, sha256, size}], kernel_args,
 *               kickstart_sha256, overlay, ip, keep_ra}] (+ kickstart: the
 *               template text, with `profiles show`)
 *   images:   [{profile, name, kind, url, sha256, size}]
 *   status:   [{host, rack, install_id, profile, state, phase, percent,
 *               updated_at, attempt, message}]
 *   events:   [{seq, time, host, install_id, phase, percent, message}]
 *   audit:    [{seq, time, who, verb, hosts, host_count, profiles, ok, result}]
 *   power:    [{id, host, action, done, ok, result, power_state, message,
 *               updated_at}]; result: ok, failed, queued (not done yet,
 *               not waited for) or timed_out (not done when the wait ended) */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "output.h"
#include "rackboot.pb-c.h"

json_t *render_hosts_json(const Rackboot__V1__HostList *l);
json_t *render_racks_json(const Rackboot__V1__RackList *l);
json_t *render_profiles_json(const Rackboot__V1__ProfileList *l, bool with_content);
json_t *render_images_json(const Rackboot__V1__ImageList *l);
json_t *render_status_json(const Rackboot__V1__StatusList *l);
json_t *render_events_json(const Rackboot__V1__EventList *l);
json_t *render_audit_json(const Rackboot__V1__AuditList *l);
/* `gave_up`: rows not done are timed_out (the wait ended), else queued. */
json_t *render_power_json(const Rackboot__V1__PowerList *l, bool gave_up);

/* A listing printed page by page as its pages arrive, in constant memory:
 *  - as a table, the header once, before the first page's rows; each
 *    column as wide as its widest cell so far, never narrower than on a
 *    page before (so a listing of one page is laid out exactly as the
 *    whole-list functions below lay it out); OUTPUT_WIDE adds the columns
 *    the plain table leaves out (hosts: firmware, DUID, BMC; status: the
 *    install's id and attempt);
 *  - JSON, YAML or names as output.h's output_seq prints them: one array,
 *    as the whole would print.
 * A listing that fails midway is left unfinished: its output must not pass
 * for a whole one. */
#define RENDER_MAX_COLS 16
typedef struct render_stream {
    FILE *f;
    output_format format;
    output_seq seq; /* structured formats */
    bool started;   /* a page was printed (a table's header at least) */
    size_t rows;    /* printed so far */
    int error;      /* the first write error, or 0 */
    size_t width[RENDER_MAX_COLS];
} render_stream;

void render_stream_init(render_stream *s, FILE *f, output_format format);
/* Each prints one page of rows; < 0 on an error (then, and after, every
 * page and the end return that error). */
int render_hosts_page(render_stream *s, const Rackboot__V1__HostList *l);
int render_status_page(render_stream *s, const Rackboot__V1__StatusList *l);
int render_events_page(render_stream *s, const Rackboot__V1__EventList *l);
/* Ends the listing. Returns the first error of any page, or of the end
 * (after an error the output is left unfinished). */
int render_stream_end(render_stream *s);
/* Leaves the listing unfinished (a failure that is not the stream's: the
 * controller stopped answering) and frees what it holds. */
void render_stream_abandon(render_stream *s);

/* The key that names a row of each JSON shape above, for `-o name`. */
#define RENDER_NAME_HOSTS    "name"
#define RENDER_NAME_RACKS    "rack"
#define RENDER_NAME_PROFILES "name"
#define RENDER_NAME_IMAGES   "url"
#define RENDER_NAME_STATUS   "host"
#define RENDER_NAME_EVENTS   "seq"
#define RENDER_NAME_AUDIT    "seq"
#define RENDER_NAME_POWER    "host"

void render_hosts_text(FILE *f, const Rackboot__V1__HostList *l);
void render_host_detail_text(FILE *f, const Rackboot__V1__Host *h);
void render_racks_text(FILE *f, const Rackboot__V1__RackList *l, uint64_t now_ms);
void render_profiles_text(FILE *f, const Rackboot__V1__ProfileList *l);
void render_profile_detail_text(FILE *f, const Rackboot__V1__Profile *p);
void render_images_text(FILE *f, const Rackboot__V1__ImageList *l);
void render_status_text(FILE *f, const Rackboot__V1__StatusList *l);
void render_events_text(FILE *f, const Rackboot__V1__EventList *l);
void render_audit_text(FILE *f, const Rackboot__V1__AuditList *l);
void render_power_text(FILE *f, const Rackboot__V1__PowerList *l, bool gave_up);
/* A power row's result word, as above. */
const char *render_power_result(const Rackboot__V1__PowerRow *r, bool gave_up);

/* Helpers the watch view shares. */
/* "2001:db8::17", or "" for an empty bytes field. buf: INET6_ADDRSTRLEN. */
const char *render_addr(const ProtobufCBinaryData *b, char *buf);
/* RFC 3339 UTC with milliseconds; "-" for 0. buf: 32 bytes. */
const char *render_time(uint64_t unix_ms, char *buf, size_t size);
/* A state or phase name; "-" for unspecified. */
const char *render_state(Rackboot__V1__InstallState s);
const char *render_phase(Rackboot__V1__Phase p);
