/* What TCP says about a connection, for progress reports of long answers
 * sent with sendfile(2), which tell nothing until they end. */
#pragma once

#include <stdint.h>

/* Bytes the peer has acknowledged on the TCP socket `fd` since the
 * connection began (RFC 4898 tcpEStatsAppHCThruOctetsAcked; Linux 4.1+).
 * -EOPNOTSUPP when the kernel does not report it, else -errno. */
int tcpinfo_bytes_acked(int fd, uint64_t *ret);
