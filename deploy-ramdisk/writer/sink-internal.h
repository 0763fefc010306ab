/* sink internals for white-box tests: a replacement for pwrite(2), so a test
 * can return short writes, EINTR and errors the kernel seldom gives. */
#pragma once

#include <sys/types.h>

#include "writer/sink.h"

/* Same contract as pwrite(2): a count, or -1 with errno set. */
typedef ssize_t (*sink_pwrite_fn)(int fd, const void *buf, size_t len, off_t offset,
                                  void *userdata);

/* NULL restores pwrite(2). */
void sink_set_pwrite(sink *s, sink_pwrite_fn fn, void *userdata);
