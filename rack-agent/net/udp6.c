#include "net/udp6.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int setsockopt_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? negative_errno() : 0;
}

int udp6_open(const struct sockaddr_in6 *addr, bool v6only, int *ret_fd, uint16_t *ret_port)
{
    _cleanup_close_ int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return negative_errno();
    }
    int r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0);
    if (r == 0) {
        r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    }
    if (r == 0) {
        r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    }
    if (r < 0) {
        return r;
    }
    struct sockaddr_in6 sa = *addr;
    sa.sin6_family = AF_INET6;
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
        return negative_errno();
    }
    socklen_t salen = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        return negative_errno();
    }
    *ret_port = ntohs(sa.sin6_port);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

bool udp6_pktinfo(struct msghdr *mh, struct in6_pktinfo *ret)
{
    bool found = false;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(*ret))) {
            memcpy(ret, CMSG_DATA(cm), sizeof(*ret));
            found = true;
        }
    }
    return found;
}

/* Fills `mh` to send `len` bytes at `buf` to `to` from `src` out of
 * `ifindex`, with `iov` and `control` as its storage. */
static void fill_msg(struct msghdr *mh, struct iovec *iov, udp6_cmsg *control,
                     const struct sockaddr_in6 *to, const void *buf, size_t len,
                     const struct in6_addr *src, unsigned ifindex)
{
    *iov = (struct iovec){ .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
    memset(control, 0, sizeof(*control));
    *mh = (struct msghdr){ .msg_name = (void *)(uintptr_t)to,
                           .msg_namelen = sizeof(*to),
                           .msg_iov = iov,
                           .msg_iovlen = 1,
                           .msg_control = control->buf,
                           .msg_controllen = sizeof(control->buf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
    cm->cmsg_level = IPPROTO_IPV6;
    cm->cmsg_type = IPV6_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct in6_pktinfo pi = { .ipi6_ifindex = ifindex };
    if (src) {
        pi.ipi6_addr = *src;
    }
    memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
}

ssize_t udp6_send(int fd, const struct sockaddr_in6 *to, const void *buf, size_t len,
                  const struct in6_addr *src, unsigned ifindex)
{
    struct iovec iov;
    udp6_cmsg control;
    struct msghdr mh;
    fill_msg(&mh, &iov, &control, to, buf, len, src, ifindex);
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? negative_errno() : n;
}

int udp6_sendq_add(udp6_sendq *q, const struct sockaddr_in6 *to, const void *buf, size_t len,
                   const struct in6_addr *src, unsigned ifindex)
{
    if (q->n >= UDP6_SENDQ_MAX) {
        return -ENOSPC;
    }
    size_t i = q->n++;
    /* The destination is copied: callers build it on their stack. */
    q->to[i] = *to;
    fill_msg(&q->msgs[i].msg_hdr, &q->iov[i], &q->control[i], &q->to[i], buf, len, src, ifindex);
    q->msgs[i].msg_len = 0;
    return 0;
}

size_t udp6_sendq_flush(int fd, udp6_sendq *q, int *err)
{
    size_t sent = 0, i = 0;
    int first = 0;
    while (i < q->n) {
        int r = sendmmsg(fd, &q->msgs[i], (unsigned)(q->n - i), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            /* The kernel stops at the first datagram it cannot send and
             * reports the ones before it; the next call reports that one's
             * error. */
            sent += (size_t)r;
            i += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        int e = r < 0 ? negative_errno() : -EIO;
        if (first == 0) {
            first = e;
        }
        if (e == -EAGAIN) { /* == -EWOULDBLOCK on Linux */
            break;
        }
        i++; /* this one is refused: skip it, send the rest */
    }
    q->n = 0;
    if (err) {
        *err = first;
    }
    return sent;
}
