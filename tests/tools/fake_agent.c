/* rb-fake-agent: a rack agent reduced to its uplink calls, for the
 * controller's integration tests. It uses the real session (client/), the
 * real handshake and the real wire schema; only the serving is missing.
 *
 *   rb-fake-agent TLS-OPTIONS hello
 *   rb-fake-agent TLS-OPTIONS sync [--held G] [--ack G] [--wait MS]
 *   rb-fake-agent TLS-OPTIONS events --from SEQ HOST:INSTALL:PHASE[:PERCENT] ...
 *   rb-fake-agent TLS-OPTIONS watch [--wait MS]
 *
 * watch syncs in a loop, as the uplink does, over a session that redials
 * (until killed): one line per answer, "t=MS ok generation=G" or
 * "t=MS error=WHY", MS the wall clock in milliseconds, so a test can tell
 * when the controller stopped answering.
 *
 * Output is one "key=value ..." line per fact, for shell tests to grep.
 * Exit: 0 ok, 1 refused / failed, 2 usage, 4 unreachable. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rbproto.h"
#include "session.h"
#include "timeutil.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: rb-fake-agent --url URL --ca F --cert F --key F [--crl F]\n"
                    "                     [--server-name N] hello | sync [--held G] [--ack G]\n"
                    "                     [--wait MS] | events --from SEQ HOST:ID:PHASE[:PCT]...\n"
                    "                     | watch [--wait MS]\n");
    return 2;
}

static int exit_code(int r)
{
    return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ECONNRESET ? 4 : 1;
}

static int do_sync(rb_session *s, uint64_t held, uint64_t ack, uint32_t wait)
{
    Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
    sync.held_generation = held;
    sync.acked_generation = ack;
    sync.max_wait_ms = wait;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
    req.sync = &sync;
    Rackboot__V1__AgentReply *rep = NULL;
    int r = rb_session_call_agent(s, &req, wait + 10000, &rep);
    if (r < 0) {
        fprintf(stderr, "sync: %s\n", errstr(r));
        return exit_code(r);
    }
    int status = 0;
    if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
        const Rackboot__V1__SyncResponse *sr = rep->sync;
        printf("rack=%s generation=%" PRIu64 " unchanged=%d intents=%zu profiles=%zu\n", sr->rack,
               sr->generation, sr->unchanged, sr->n_intents, sr->n_profiles);
        for (size_t i = 0; i < sr->n_intents; i++) {
            const Rackboot__V1__Intent *in = sr->intents[i];
            printf("intent host=%s install=%s profile=%s token=%s attempt=%u\n", in->host,
                   in->install_id, in->profile, in->token, in->attempt);
        }
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
        printf("error code=%s message=%s\n", rbproto_status_to_string(rep->error->code),
               rep->error->message);
        status = 1;
    }
    rbproto_free(&rep->base);
    return status;
}

static int do_events(rb_session *s, uint64_t from, char **specs, size_t n)
{
    Rackboot__V1__Event *evs = calloc(n, sizeof(*evs));
    Rackboot__V1__Event **ptrs = calloc(n, sizeof(*ptrs));
    char **copies = calloc(n, sizeof(*copies));
    Rackboot__V1__EventBatch batch = RACKBOOT__V1__EVENT_BATCH__INIT;
    Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
    Rackboot__V1__AgentReply *rep = NULL;
    int r, status = 2;
    if (!evs || !ptrs || !copies) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rackboot__v1__event__init(&evs[i]);
        copies[i] = strdup(specs[i]);
        char *save = NULL;
        char *host = strtok_r(copies[i], ":", &save);
        char *id = strtok_r(NULL, ":", &save);
        char *phase = strtok_r(NULL, ":", &save);
        char *pct = strtok_r(NULL, ":", &save);
        if (!host || !id || !phase || rbproto_phase_from_string(phase, &evs[i].phase) < 0) {
            fprintf(stderr, "bad event %s\n", specs[i]);
            goto out;
        }
        evs[i].seq = from + i;
        evs[i].time_unix_ms = now_realtime_ms();
        evs[i].host = host;
        evs[i].install_id = id;
        evs[i].percent = pct ? (uint32_t)atoi(pct) : 0;
        evs[i].message = RB_UNCONST("");
        ptrs[i] = &evs[i];
    }
    batch.n_events = n;
    batch.events = ptrs;
    req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_EVENTS;
    req.events = &batch;
    r = rb_session_call_agent(s, &req, 10000, &rep);
    if (r < 0) {
        fprintf(stderr, "events: %s\n", errstr(r));
        status = exit_code(r);
        goto out;
    }
    status = 0;
    if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_EVENT_ACK) {
        printf("stored_through=%" PRIu64 "\n", rep->event_ack->stored_through);
    } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR) {
        printf("error code=%s message=%s\n", rbproto_status_to_string(rep->error->code),
               rep->error->message);
        status = 1;
    }
    rbproto_free(&rep->base);
out:
    for (size_t i = 0; copies && i < n; i++) {
        free(copies[i]);
    }
    free(copies);
    free(ptrs);
    free(evs);
    return status;
}

/* Never returns: the test kills it. */
static _Noreturn void do_watch(rb_session *s, uint32_t wait)
{
    uint64_t held = 0;
    for (;;) {
        Rackboot__V1__SyncRequest sync = RACKBOOT__V1__SYNC_REQUEST__INIT;
        sync.held_generation = held;
        sync.acked_generation = held;
        sync.max_wait_ms = wait;
        Rackboot__V1__AgentRequest req = RACKBOOT__V1__AGENT_REQUEST__INIT;
        req.body_case = RACKBOOT__V1__AGENT_REQUEST__BODY_SYNC;
        req.sync = &sync;
        Rackboot__V1__AgentReply *rep = NULL;
        int r = rb_session_call_agent(s, &req, wait + 2000, &rep);
        if (r < 0) {
            printf("t=%" PRIu64 " error=%s\n", now_realtime_ms(), errstr(r));
        } else if (rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_SYNC) {
            held = rep->sync->generation;
            printf("t=%" PRIu64 " ok generation=%" PRIu64 "\n", now_realtime_ms(), held);
        } else {
            printf("t=%" PRIu64 " error=%s\n", now_realtime_ms(),
                   rep->body_case == RACKBOOT__V1__AGENT_REPLY__BODY_ERROR ? rep->error->message
                                                                           : "unexpected reply");
        }
        fflush(stdout);
        if (r >= 0) {
            rbproto_free(&rep->base);
        }
        if (r < 0) {
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "ca", required_argument, NULL, 'a' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "crl", required_argument, NULL, 'r' },
        { "server-name", required_argument, NULL, 's' },
        { "held", required_argument, NULL, 'H' },
        { "ack", required_argument, NULL, 'A' },
        { "wait", required_argument, NULL, 'w' },
        { "from", required_argument, NULL, 'f' },
        { 0 },
    };
    rb_session_config cfg = { .kind = RB_SESSION_AGENT };
    uint64_t held = 0, ack = 0, from = 1;
    uint32_t wait = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            cfg.url = optarg;
            break;
        case 'a':
            cfg.ca = optarg;
            break;
        case 'c':
            cfg.cert = optarg;
            break;
        case 'k':
            cfg.key = optarg;
            break;
        case 'r':
            cfg.crl = optarg;
            break;
        case 's':
            cfg.server_name = optarg;
            break;
        case 'H':
            held = strtoull(optarg, NULL, 10);
            break;
        case 'A':
            ack = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            wait = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            from = strtoull(optarg, NULL, 10);
            break;
        default:
            return usage();
        }
    }
    if (optind >= argc || !cfg.url) {
        return usage();
    }
    const char *cmd = argv[optind++];
    /* Options may also follow the command. */
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            held = strtoull(optarg, NULL, 10);
            break;
        case 'A':
            ack = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            wait = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            from = strtoull(optarg, NULL, 10);
            break;
        default:
            return usage();
        }
    }
    if (streq(cmd, "watch")) {
        cfg.reconnect = true; /* nng redials a lost connection, as for the uplink */
    }
    rb_session *s = NULL;
    char *error = NULL;
    int r = rb_session_open(&cfg, &s, &error);
    if (r < 0) {
        printf("refused reason=%s\n", error ? error : errstr(r));
        free(error);
        return exit_code(r) == 4 && r != -EACCES ? 4 : 1;
    }
    int status;
    if (streq(cmd, "hello")) {
        const Rackboot__V1__AuthResult *id = rb_session_identity(s);
        printf("rack=%s name=%s controller=%s\n", id->rack, id->name, id->controller_version);
        status = 0;
    } else if (streq(cmd, "sync")) {
        status = do_sync(s, held, ack, wait);
    } else if (streq(cmd, "watch")) {
        do_watch(s, wait ? wait : 1000);
    } else if (streq(cmd, "events")) {
        status =
            optind < argc ? do_events(s, from, argv + optind, (size_t)(argc - optind)) : usage();
    } else {
        status = usage();
    }
    rb_session_close(s);
    return status;
}
