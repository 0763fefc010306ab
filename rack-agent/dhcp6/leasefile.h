/* The DHCPv6 lease file: bindings survive an agent restart.
 *
 * STATE_DIR/dhcp6.leases is a text file, a version header and then one line
 * per change, appended in order:
 *
 *     # rackboot dhcp6 leases v1
 *     + host 2001:db8:1::17 1767225600 c 52:54:00:12:34:56 000100012b...  1
 *     - pool 2001:db8:1::1000 1767225600 c 00:00:00:00:00:00 0004a1b2... 7
 *
 * fields: op (+ set, - released), kind, address, expiry (unix seconds),
 * flags (c committed, d declined, or -), MAC, client DUID in hex (- when
 * none), IAID. On start the file is read back (a truncated last line, as a
 * crash leaves it, is ignored), the bindings restored, and the file
 * rewritten atomically with only the live bindings (compaction).
 *
 * While running, the sink buffers lines and a timer writes them once a second
 * with one write(2), then fsyncs on the libuv thread pool. A power cut loses
 * at most the changes of the last interval; a host with a reservation gets
 * the same address back anyway, so what is lost is at worst a pool client's
 * address, which it then gets anew.
 *
 * Bounded (dhcp6_leasefile_set_limits): the file never grows past its cap,
 * nor the buffer past its own; when either would, the file is rewritten from
 * the bindings in memory, which hold every change the records describe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dhcp6/bindings.h"

#define DHCP6_LEASEFILE_HEADER "# rackboot dhcp6 leases v1\n"
/* The longest record: op, kind, address, expiry, flags, MAC, 130-byte DUID
 * in hex, IAID, separators. */
#define DHCP6_LEASEFILE_MAX_LINE 400
/* The file's default cap: well under what dhcp6_leasefile_load() reads
 * (256 MiB), and ~250,000 records of a typical 130 bytes. */
#define DHCP6_LEASEFILE_DEFAULT_MAX_BYTES (32u * 1024u * 1024u)

/* Formats one record (with its newline) into buf; returns its length. */
size_t dhcp6_leasefile_format(const dhcp6_binding *b, bool removed, char *buf, size_t size);

typedef struct dhcp6_leasefile_stats {
    size_t records; /* lines applied */
    size_t bad;     /* malformed complete lines, skipped */
    bool truncated; /* the last line had no newline and was ignored */
} dhcp6_leasefile_stats;

/* Reads `path` and applies its records to `t` at time `now` (expired ones are
 * dropped). A missing file is no bindings. -EBADMSG when the header is not
 * ours. */
int dhcp6_leasefile_load(const char *path, dhcp6_bindings *t, uint64_t now,
                         dhcp6_leasefile_stats *ret_stats);

/* Rewrites `path` atomically with the live bindings of `t`. */
int dhcp6_leasefile_compact(const char *path, const dhcp6_bindings *t);

typedef struct dhcp6_leasefile dhcp6_leasefile;

/* Opens `path` for appending (it must have been compacted, so it ends in a
 * complete line) and starts the flush timer. Register dhcp6_leasefile_sink
 * with `lf` as userdata on the bindings. */
int dhcp6_leasefile_open(uv_loop_t *loop, const char *path, uint64_t interval_ms,
                         dhcp6_leasefile **ret);
void dhcp6_leasefile_sink(void *userdata, const dhcp6_binding *b, bool removed);
/* Bounds the file and the memory behind it (0: the defaults,
 * DHCP6_LEASEFILE_DEFAULT_MAX_BYTES and 1 MiB). `t`, which must outlive
 * `lf`, holds every change the file records: when appending would take the
 * file past `max_bytes`, or a change did not fit the buffer of `max_buffer`
 * bytes (while a compaction runs, or writes fail), the file is rewritten
 * from `t` instead (on the thread pool, at the next tick of the timer). The
 * file stays under `max_bytes` unless the live bindings alone need more
 * than half of it; then under twice their size. Without limits set, the
 * file is not bounded and a change that does not fit the buffer is lost. */
void dhcp6_leasefile_set_limits(dhcp6_leasefile *lf, const dhcp6_bindings *t, size_t max_bytes,
                                size_t max_buffer);
/* The file's size as written so far, and the memory the buffer holds. */
uint64_t dhcp6_leasefile_size(const dhcp6_leasefile *lf);
size_t dhcp6_leasefile_buffer_capacity(const dhcp6_leasefile *lf);
/* Bytes of records buffered, not yet written. */
size_t dhcp6_leasefile_buffered(const dhcp6_leasefile *lf);
/* Changes that did not fit the buffer (then carried by a rewrite). */
uint64_t dhcp6_leasefile_dropped(const dhcp6_leasefile *lf);
/* Records appended since the file was opened or last compacted. */
uint64_t dhcp6_leasefile_appended(const dhcp6_leasefile *lf);
/* Rewrites the file with the live bindings of `t` without blocking the loop:
 * the snapshot is formatted here and written (temp file, fsync, rename) on the
 * libuv thread pool; records still buffered are dropped (the snapshot holds
 * their effect), changes meanwhile are buffered and go to the new file.
 * -EBUSY while one is running. A long-running agent calls this when the log
 * has grown well past its live size, so the file does not grow forever. */
int dhcp6_leasefile_compact_async(dhcp6_leasefile *lf, const dhcp6_bindings *t);
bool dhcp6_leasefile_compacting(const dhcp6_leasefile *lf);
/* Writes what is buffered and fsyncs, synchronously (shutdown, tests), or
 * rewrites the file from the bindings when the limits say so. -EBUSY while
 * a compaction runs. */
int dhcp6_leasefile_flush_sync(dhcp6_leasefile *lf);
/* Flushes synchronously, closes the timer and frees `lf` once libuv is done
 * with it (after the loop runs its close callbacks). */
void dhcp6_leasefile_close(dhcp6_leasefile *lf);
