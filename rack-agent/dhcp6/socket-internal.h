/* White-box view of dhcp6/socket.c for tests: the receive pacer.
 *
 * Under steady load at a few thousand exchanges per second, every datagram
 * would otherwise wake the loop on its own, and a wake-up (epoll_wait
 * sleeping and being woken, a context switch each way) costs more than
 * answering the datagram. So after a round that read only a few datagrams,
 * while datagrams keep arriving, the socket waits a short, fixed time and
 * reads again, answering what gathered meanwhile with one recvmmsg(2) and
 * one sendmmsg(2).
 *
 * The price, and its bounds:
 *  - latency: a datagram that arrives during a wait is answered up to
 *    `wait_us` (+ the kernel's 50 us timer slack) later;
 *  - the loop: a wake-up may hold the libuv loop for up to `budget_us`
 *    (TFTP, HTTP and timers wait that long at most), then returns to it;
 *  - it only happens under load: a wait needs the previous wake-up to have
 *    ended less than `steady_gap_us` ago, and stops as soon as a read finds
 *    nothing. A quiet rack (a few hosts netbooting) waits at most once in a
 *    while, when two datagrams come less than `steady_gap_us` apart, and
 *    the wait then costs one wake-up and `wait_us` of latency.
 * A full batch is read again at once, without waiting. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dhcp6_pacer {
    /* Settings. wait_us == 0 turns waiting off. */
    uint32_t wait_us;       /* how long to wait before reading again */
    uint32_t steady_gap_us; /* the loop idled less than this: load is steady */
    uint32_t budget_us;     /* time one wake-up may take, waits included */
    uint32_t small;         /* a round that read fewer datagrams is small */
    uint32_t max_rounds;    /* reads per wake-up at most */
    /* State. */
    uint64_t idle_since_us; /* when the last wake-up returned to the loop */
    uint64_t woke_us;       /* when the current wake-up began */
    uint32_t round;         /* reads so far in this wake-up */
    bool steady;
} dhcp6_pacer;

/* The daemon's settings, measured with tests/bench/dhcp6 (perfdhcp at
 * 5,000-10,000 exchanges/s, where a wake-up otherwise carries one or two
 * datagrams; server CPU per 1,000 exchanges at 5,000/7,500 per second with
 * waits of 0: 55/42 ms, 200 us: 49/38, 300 us: 43/33, 400 us: 37/30):
 * waits of 300 us, so a datagram waits 350 us at most with the timer slack,
 * while the previous wake-up ended less than 1 ms ago, after reads of fewer
 * than 8 datagrams; a wake-up holds the loop 1 ms at most and reads 16 times
 * at most. */
#define DHCP6_PACER_DEFAULT                                                                        \
    ((dhcp6_pacer){                                                                                \
        .wait_us = 300, .steady_gap_us = 1000, .budget_us = 1000, .small = 8, .max_rounds = 16 })

/* A wake-up begins at `now_us` (monotonic). */
void dhcp6_pacer_wake(dhcp6_pacer *p, uint64_t now_us);

/* A read of this wake-up got `n` datagrams of at most `batch`, and they are
 * answered; it is now `now_us`. Returns false to go back to the loop, true
 * to read again, after waiting *ret_wait_us (0: at once). */
bool dhcp6_pacer_next(dhcp6_pacer *p, size_t n, size_t batch, uint64_t now_us,
                      uint32_t *ret_wait_us);

/* The wake-up returns to the loop at `now_us`. */
void dhcp6_pacer_idle(dhcp6_pacer *p, uint64_t now_us);
