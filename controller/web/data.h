/* web/data: what the web view's pages read, as JSON, and the live events
 * feed, as Server-Sent Events. The store is read on the store queue (never
 * on the loop); a request waits, suspended, for its job.
 *
 *   GET /api/hosts?rack=&state=&phase=&prefix=&after=&limit=
 *       {"hosts": [{host, rack, state, phase, percent, profile, install_id,
 *        attempt, updated, message}...], "more": bool} in host name order,
 *       filtered and paged on the controller (web/filter.h): the next page
 *       is after= the last host. 400 with the reason for a bad query.
 *   GET /api/racks
 *       {"racks": [{rack, agent, version, last_seen, generation,
 *        acked_generation, hosts, active_installs, cache_bytes,
 *        cache_limit_bytes, status_time, answer_files}...]}: cache_bytes,
 *        cache_limit_bytes and status_time are what the agent last
 *        reported with a sync (null: never; cache_limit_bytes null also
 *        when the cache has no limit); answer_files says the agent reported
 *        its render context, so /api/answer can render for the rack.
 *   GET /api/answer?host=NAME
 *       text/plain: the kickstart (or preseed) of the host's active
 *       install as its agent serves it, the install's token replaced by
 *       REDACTED (web/answer.h); the header X-Rackboot-Answer-Kind says
 *       "kickstart" or "preseed". 404 for an unknown host, a host without
 *       an active install, or a profile without an answer file (image);
 *       409 when the rack's agent never reported its render context; the
 *       reason as the body.
 *   GET /api/events?after=SEQ&limit=N&host=H&tail=N
 *       {"events": [{seq, time, host, install_id, phase, percent,
 *        message}...], "last_seq": SEQ}, oldest first; tail=N (every host):
 *       those among the last N seqs stored, for a page's first view.
 *   GET /api/me
 *       {"who": "operator:alice", "role": "operator"|"viewer"} (server.c).
 *   GET /api/events/stream?after=SEQ   (or the Last-Event-ID header)
 *       text/event-stream: every event stored after SEQ, as it is stored,
 *       one "id: SEQ" / "data: {event}" message each (EventSource resumes
 *       from the last id by itself), and a comment line every
 *       WEB_KEEPALIVE_MS so idle connections are seen to be alive.
 *
 * Times are Unix milliseconds; states and phases their lower-case names.
 * Loop thread only. */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "http/server.h"
#include "store/queue.h"

#define WEB_KEEPALIVE_MS 15000u
#define WEB_EVENTS_PAGE  500u /* events per store read */
#define WEB_MAX_STREAMS  256u /* live event streams at once */

typedef struct web_data web_data;

/* `queue` must be freed before the web_data (its jobs' done callbacks use
 * it). */
int web_data_new(uv_loop_t *loop, store_queue *queue, web_data **ret);

/* Ends the keep-alive timer; memory is freed once libuv has closed it.
 * Streams must be gone already (the HTTP server closed). Accepts NULL,
 * returns NULL. */
web_data *web_data_free(web_data *d);

/* Route handlers (the caller checked the session). */
void web_data_hosts(web_data *d, http_request *req);
void web_data_racks(web_data *d, http_request *req);
void web_data_answer(web_data *d, http_request *req);
void web_data_events(web_data *d, http_request *req);
void web_data_stream(web_data *d, http_request *req);

/* New events are stored: the streams read them. */
void web_data_poke(web_data *d);

/* Install states changed without an event (a dispatch, an install or a
 * cancel asked for, a timeout): each stream gets a `change` event, on
 * which a page reads again what it shows. */
void web_data_changed(web_data *d);
