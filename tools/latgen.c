/* latgen: the sending and receiving engine of `loadgen.py latency --engine c`.
 *
 * loadgen.py connects, registers and joins the sender and the members, syncs
 * them, and then starts this program with the connected sockets inherited. It
 * reads on stdin the sender's fd, then one member fd per line. It sends COUNT
 * messages at RATE a second on an absolute timer schedule (timerfd), each
 *     PRIVMSG <channel> :<seq> <CLOCK_REALTIME ns><pad>
 * stamped as it is written, reads every member (the kernel's receive time,
 * SO_TIMESTAMPNS, and the time this program read it), answers PINGs, and
 * prints one "DONE {json}" line when every member has every message or DRAIN_S
 * seconds after the last send.
 *
 * Why C: reading 100,000 deliveries a second costs a Python generator 90-98%
 * of its core, and on a two-core machine that core also runs the relaying
 * servers of a linked network, which then wait for it.
 *
 * Usage: latgen MEMBERS RATE COUNT DRAIN_S PAD CHANNEL
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "gen_common.h"

#define TAILMAX 4096
#define RBUF_SIZE (256 * 1024)

typedef struct {
    int fd, closed, taillen;
    uint64_t got;
    char tail[TAILMAX];
    char last[200];
} Member;

static Member *m;            /* members 0..n-1, the sender at n */
static int n, ep;
static char rbuf[RBUF_SIZE + TAILMAX];
static int64_t *lat, *ulat;
static size_t nlat, caplat;
static uint64_t out_of_order, odd;
static char failure[512];

static void fail(int i, const char *why) {
    note_failure(failure, sizeof failure, i == n ? "sender" : "member", i, why, m[i].last);
    if (!m[i].closed) { m[i].closed = 1; epoll_ctl(ep, EPOLL_CTL_DEL, m[i].fd, NULL); }
}

/* The sender's messages (100-odd bytes at a time) and PONGs: whole, or a failure. */
static void put(int i, const char *d, size_t k) {
    const char *why = m[i].closed ? NULL : send_whole(m[i].fd, d, k);
    if (why) fail(i, why);
}

/* The number at p (digits up to a space or the end), or -1. */
static int64_t number(const char **p, const char *end) {
    int64_t x = 0; const char *q = *p;
    if (q >= end || *q < '0' || *q > '9') return -1;
    while (q < end && *q >= '0' && *q <= '9') x = x * 10 + (*q++ - '0');
    *p = q;
    return x;
}

static void sample(int64_t tk, int64_t tu) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        lat = realloc(lat, caplat * sizeof *lat);
        ulat = realloc(ulat, caplat * sizeof *ulat);
        if (!lat || !ulat) { fprintf(stderr, "latgen: out of memory\n"); exit(2); }
    }
    lat[nlat] = tk; ulat[nlat] = tu; nlat++;
}

static void readable(int i) {
    Member *c = &m[i];
    memcpy(rbuf, c->tail, c->taillen);
    struct iovec iov = { rbuf + c->taillen, RBUF_SIZE };
    char cbuf[CMSG_SPACE(sizeof(struct timespec))];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    ssize_t r = recvmsg(c->fd, &mh, 0);
    if (r < 0) { if (errno != EAGAIN && errno != EINTR) fail(i, strerror(errno)); return; }
    if (r == 0) { fail(i, "server closed the connection"); return; }
    int64_t tu = wall_ns(), tk = recv_stamp(&mh, tu);
    const char *p = rbuf, *end = rbuf + c->taillen + r;
    for (;;) {
        const char *nl = memchr(p, '\n', end - p);
        if (!nl) break;
        int len = (int)(nl - p);
        const char *k = i < n ? memmem(p, len, " PRIVMSG ", 9) : NULL;
        const char *text = k ? memmem(k + 9, nl - (k + 9), " :", 2) : NULL;
        int64_t seq = -1, ts = -1;
        if (text) {
            const char *q = text + 2;
            seq = number(&q, nl);
            if (seq >= 0 && q < nl && *q == ' ') { q++; ts = number(&q, nl); }
        }
        if (ts >= 0) {
            if ((uint64_t)seq != c->got) out_of_order++;
            c->got++;
            sample(tk - ts, tu - ts);
        } else {
            char pong[600];
            int k = other_line(p, len, pong, c->last);
            if (k) put(i, pong, k);
            else odd++;
        }
        p = nl + 1;
    }
    int rest = (int)(end - p);
    if (rest > TAILMAX) rest = TAILMAX;      /* a line that long is not ours */
    memmove(c->tail, p, rest); c->taillen = rest;
}

static uint64_t sum_got(void) { uint64_t s = 0; for (int i = 0; i < n; i++) s += m[i].got; return s; }

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: latgen MEMBERS RATE COUNT DRAIN_S PAD CHANNEL\n"); return 2; }
    n = atoi(argv[1]);
    double rate = atof(argv[2]), drain = atof(argv[4]);
    long count = atol(argv[3]), pad = atol(argv[5]);
    const char *chan = argv[6];
    if (n < 1 || rate <= 0 || count < 1) { fprintf(stderr, "latgen: bad arguments\n"); return 2; }
    m = calloc(n + 1, sizeof *m);
    ep = epoll_create1(0);
    char padding[1024] = "";
    if (pad > 0) { if (pad > 1000) pad = 1000; padding[0] = ' '; memset(padding + 1, 'x', pad - 1); padding[pad] = 0; }
    if (scanf("%d", &m[n].fd) != 1) { fprintf(stderr, "latgen: no sender fd on stdin\n"); return 2; }
    for (int i = 0; i < n; i++)
        if (scanf("%d", &m[i].fd) != 1) { fprintf(stderr, "latgen: bad member line %d on stdin\n", i); return 2; }
    for (int i = 0; i <= n; i++) {
        int one = 1;
        if (i < n) setsockopt(m[i].fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, m[i].fd, &ev) < 0) { perror("latgen: epoll_ctl"); return 2; }
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0) { perror("latgen: timerfd_create"); return 2; }
    struct epoll_event tev = { .events = EPOLLIN, .data.u32 = (uint32_t)(n + 1) };
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    long interval_ns = (long)(1e9 / rate);
    struct itimerspec its = { .it_interval = { interval_ns / 1000000000, interval_ns % 1000000000 },
                              .it_value = { 0, 1000 } };      /* the first message at once */
    timerfd_settime(tfd, 0, &its, NULL);

    double t0 = mono(), g0 = self_cpu(), gw0 = runq_wait(0), t_sent = 0, g_sent = 0, gw_sent = 0;
    long sent = 0;
    uint64_t behind = 0;          /* timer expirations that found an earlier one unsent */
    double deadline = 0;
    char msg[2048];
    const uint64_t want = (uint64_t)count * n;
    static struct epoll_event evs[4096];
    while (!failure[0]) {
        if (sent == count) {
            if (sum_got() >= want || mono() > deadline) break;
        }
        int k = epoll_wait(ep, evs, 4096, sent == count ? 20 : -1);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32;
            if (i == n + 1) {
                uint64_t due = 0;
                if (read(tfd, &due, sizeof due) != sizeof due) continue;
                if (due > 1) behind += due - 1;
                for (uint64_t d = 0; d < due && sent < count; d++) {
                    int len = snprintf(msg, sizeof msg, "PRIVMSG %s :%ld %lld%s\r\n", chan, sent,
                                       (long long)wall_ns(), padding);
                    put(n, msg, len);
                    sent++;
                }
                if (sent == count) {
                    struct itimerspec off = { { 0, 0 }, { 0, 0 } };
                    timerfd_settime(tfd, 0, &off, NULL);
                    t_sent = mono(); g_sent = self_cpu(); gw_sent = runq_wait(0);
                    deadline = t_sent + drain;
                }
                continue;
            }
            if (m[i].closed) continue;
            if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(i);
        }
    }
    if (!t_sent) { t_sent = mono(); g_sent = self_cpu(); gw_sent = runq_wait(0); }
    double dt = t_sent - t0; if (dt < 1e-9) dt = 1e-9;
    uint64_t got = sum_got();
    double mean = 0;
    for (size_t j = 0; j < nlat; j++) mean += lat[j];
    mean = nlat ? mean / nlat / 1e6 : -1;
    qsort(lat, nlat, sizeof *lat, cmp64);
    qsort(ulat, nlat, sizeof *ulat, cmp64);
    printf("DONE {\"messages_sent\": %ld, \"deliveries\": %llu, \"lost\": %lld, \"out_of_order\": %llu, "
           "\"other_lines\": %llu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"max_ms\": %.3f, \"mean_ms\": %.3f, \"user_p50_ms\": %.3f, \"user_p99_ms\": %.3f, "
           "\"timer_behind\": %llu, \"generator_cpu\": %.3f, \"generator_runq_wait_ms_per_s\": %.1f",
           sent, (unsigned long long)got, (long long)((uint64_t)sent * n) - (long long)got,
           (unsigned long long)out_of_order, (unsigned long long)odd,
           pct_ms(lat, nlat, 50), pct_ms(lat, nlat, 90), pct_ms(lat, nlat, 99), pct_ms(lat, nlat, 99.9), nlat ? lat[nlat - 1] / 1e6 : -1, mean,
           pct_ms(ulat, nlat, 50), pct_ms(ulat, nlat, 99), (unsigned long long)behind,
           (g_sent - g0) / dt, gw0 >= 0 ? (gw_sent - gw0) / dt * 1000 : -1.0);
    if (failure[0]) printf(", \"failure\": \"%s\"", failure);
    printf("}\n");
    fflush(stdout);
    return 0;
}
