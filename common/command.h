/* command: run a program to completion and keep what it said.
 *
 * For the few jobs a well-kept tool does better than code of ours (mtools
 * writing a FAT file system, objcopy assembling a PE image). Synchronous:
 * callers on an event loop run it from a worker thread. */
#pragma once

#include <stddef.h>

/* Output kept per stream: stdout up to this many bytes (more is an error),
 * stderr its last COMMAND_ERR_TAIL bytes (for the error message). */
#define COMMAND_OUT_MAX  ((size_t)1 << 20)
#define COMMAND_ERR_TAIL 512

/* Runs argv (argv[0] looked up on PATH) with stdin on /dev/null and this
 * process's environment. With `ret_out`, its stdout is returned there
 * (malloc'ed, NUL-terminated); without, stdout goes to /dev/null.
 *
 * 0 when it exited 0. Otherwise a negative errno and `*ret_error` saying
 * what failed: "objcopy: exited with status 1: <the end of its stderr>",
 * killed by a signal, not found (-ENOENT), or output too large (-E2BIG). */
int command_run(char *const argv[], char **ret_out, char **ret_error);
