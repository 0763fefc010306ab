/* Only the kernel's header has tcpi_bytes_acked (glibc's struct tcp_info
 * stops before it), and it cannot be mixed with <netinet/tcp.h>: this file
 * includes it alone. */
#include "tcpinfo.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcp.h>

#ifndef SOL_TCP
#define SOL_TCP 6
#endif

int tcpinfo_bytes_acked(int fd, uint64_t *ret)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (fd < 0) {
        return -EBADF;
    }
    if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len) < 0) {
        return -errno;
    }
    if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
        return -EOPNOTSUPP;
    }
    *ret = ti.tcpi_bytes_acked;
    return 0;
}
