#include "udp6.h"

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

ssize_t udp6_send(int fd, const struct sockaddr_in6 *to, const void *buf, size_t len,
                  const struct in6_addr *src, unsigned ifindex)
{
    struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr mh = { .msg_name = (void *)(uintptr_t)to,
                         .msg_namelen = sizeof(*to),
                         .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = IPPROTO_IPV6;
    cm->cmsg_type = IPV6_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct in6_pktinfo pi = { .ipi6_ifindex = ifindex };
    if (src) {
        pi.ipi6_addr = *src;
    }
    memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? negative_errno() : n;
}
