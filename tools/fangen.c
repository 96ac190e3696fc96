/* fangen: the sending and counting engine of `loadgen.py fanout --engine c`.
 *
 * loadgen.py connects, registers and joins the sender and the members, syncs
 * them (each member learns the length of a message line), and then starts this
 * program with the connected sockets inherited. It reads on stdin the sender's
 * fd, then "fd line-length" per member. It keeps at most WINDOW messages in
 * flight, counted by the slowest member, sending
 *     PRIVMSG <channel> :<seq, 9 digits> <CLOCK_REALTIME ns, 19 digits><pad>
 * for DURATION seconds (or LIMIT messages, if not 0), counts every member's
 * lines without parsing them (fixed length: the alignment is checked in O(1),
 * anything else takes a line-by-line path that answers PINGs), then waits up
 * to DRAIN_S seconds for every member to have every message.
 *
 * It prints "START" when it begins sending, "STOP" when it stops (loadgen.py
 * reads the servers' CPU between the two), and one "DONE {json}" line.
 *
 * Why C: counting 10 million lines a second cost the Python reader half a
 * core, and in `linkbench.py split` the two servers share the machine's two
 * cores with the generator.
 *
 * Usage: fangen MEMBERS WINDOW DURATION WARMUP LIMIT TIMEOUT DRAIN_S PAD CHANNEL
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gen_common.h"

#define TAILMAX 4096
#define RBUF_SIZE (256 * 1024)

typedef struct {
    int fd, closed, taillen, size;
    uint64_t got;
    char tail[TAILMAX];
    char last[200];
} Member;

static Member *m;            /* members 0..n-1, the sender at n */
static int n, ep;
static uint64_t total;       /* deliveries counted, all members */
/* How many members have each count, in a ring of window + 1 slots: every count
 * lies between the slowest member's and the messages sent, at most window apart,
 * so the slowest count advances in O(1) instead of a scan of every member. */
static uint32_t *ring;
static uint64_t ringsize, lowest, sent;
static char rbuf[RBUF_SIZE + TAILMAX];
static char *out;            /* the sender's unwritten bytes */
static size_t outlen, outoff, outcap;
static char failure[512];

static void fail(int i, const char *why) {
    note_failure(failure, sizeof failure, i == n ? "sender" : "member", i, why, m[i].last);
    if (!m[i].closed) { m[i].closed = 1; epoll_ctl(ep, EPOLL_CTL_DEL, m[i].fd, NULL); }
}

/* A PONG: whole, or a failure. */
static void put(int i, const char *d, size_t k) {
    const char *why = m[i].closed ? NULL : send_whole(m[i].fd, d, k);
    if (why) fail(i, why);
}

/* Line by line: count message lines (members only), answer PINGs. */
static uint64_t slow(int i, const char *p, const char *end) {
    uint64_t k = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', end - p);
        if (!nl) break;
        int len = (int)(nl - p);
        if (i < n && memmem(p, len, " PRIVMSG ", 9)) k++;
        else {
            char pong[600];
            int w = other_line(p, len, pong, m[i].last);
            if (w) put(i, pong, w);
        }
        p = nl + 1;
    }
    int rest = (int)(end - p);
    if (rest > TAILMAX) rest = TAILMAX;      /* a line that long is not ours */
    memmove(m[i].tail, p, rest); m[i].taillen = rest;
    return k;
}

static void readable(int i) {
    Member *c = &m[i];
    memcpy(rbuf, c->tail, c->taillen);
    ssize_t r = recv(c->fd, rbuf + c->taillen, RBUF_SIZE, 0);
    if (r < 0) { if (errno != EAGAIN && errno != EINTR) fail(i, strerror(errno)); return; }
    if (r == 0) { fail(i, "server closed the connection"); return; }
    size_t len = c->taillen + (size_t)r, size = (size_t)c->size;
    uint64_t k = 0;
    if (i < n && size) {
        size_t whole = len / size;
        /* Fixed-length lines: the first and the last completed line end where they
         * should, and every line starts with ':'. */
        if (whole && rbuf[0] == ':' && rbuf[size - 1] == '\n' && rbuf[whole * size - 1] == '\n'
            && (whole * size == len || rbuf[whole * size] == ':')) {
            k = whole;
            size_t rest = len - whole * size;
            memcpy(c->tail, rbuf + whole * size, rest); c->taillen = (int)rest;
        } else if (!whole && len < TAILMAX && !memchr(rbuf, '\n', len)) {
            memcpy(c->tail, rbuf, len); c->taillen = (int)len;
        } else {
            k = slow(i, rbuf, rbuf + len);
        }
    } else {
        k = slow(i, rbuf, rbuf + len);
    }
    if (k && i < n) {
        if (c->got + k > sent) { fail(i, "received more messages than were sent"); return; }
        ring[c->got % ringsize]--;
        c->got += k;
        ring[c->got % ringsize]++;
        total += k;
        while (!ring[lowest % ringsize]) lowest++;
    }
}

/* Write what the sender has queued; watch for EPOLLOUT while some is left. */
static void flush_sender(void) {
    Member *s = &m[n];
    if (s->closed) { outlen = outoff = 0; return; }
    while (outoff < outlen) {
        ssize_t w = send(s->fd, out + outoff, outlen - outoff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) { fail(n, strerror(errno)); outlen = outoff = 0; return; }
            break;
        }
        outoff += (size_t)w;
    }
    struct epoll_event ev = { .events = EPOLLIN | (outoff < outlen ? EPOLLOUT : 0), .data.u32 = (uint32_t)n };
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    if (outoff == outlen) outlen = outoff = 0;
}

static void poll_once(int ms) {
    static struct epoll_event evs[4096];
    int k = epoll_wait(ep, evs, 4096, ms);
    for (int j = 0; j < k; j++) {
        int i = (int)evs[j].data.u32;
        if (m[i].closed) continue;
        if (i == n && (evs[j].events & EPOLLOUT)) flush_sender();
        if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(i);
    }
}

static int slowest_member(void) {
    for (int i = 0; i < n; i++) if (m[i].got == lowest) return i;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: fangen MEMBERS WINDOW DURATION WARMUP LIMIT TIMEOUT DRAIN_S PAD CHANNEL\n");
        return 2;
    }
    n = atoi(argv[1]);
    long window = atol(argv[2]), limit = atol(argv[5]), pad = atol(argv[8]);
    double duration = atof(argv[3]), warmup = atof(argv[4]), timeout = atof(argv[6]), drain = atof(argv[7]);
    const char *chan = argv[9];
    if (n < 1 || window < 1 || duration <= 0) { fprintf(stderr, "fangen: bad arguments\n"); return 2; }
    m = calloc(n + 1, sizeof *m);
    ep = epoll_create1(0);
    char padding[1024] = "";
    if (pad > 0) { if (pad > 1000) pad = 1000; padding[0] = ' '; memset(padding + 1, 'x', pad - 1); padding[pad] = 0; }
    if (scanf("%d", &m[n].fd) != 1) { fprintf(stderr, "fangen: no sender fd on stdin\n"); return 2; }
    for (int i = 0; i < n; i++)
        if (scanf("%d %d", &m[i].fd, &m[i].size) != 2) {
            fprintf(stderr, "fangen: bad member line %d on stdin\n", i); return 2;
        }
    for (int i = 0; i <= n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, m[i].fd, &ev) < 0) { perror("fangen: epoll_ctl"); return 2; }
    }
    ringsize = (uint64_t)window + 1;
    ring = calloc(ringsize, sizeof *ring);
    ring[0] = (uint32_t)n;
    char head[600];
    int headlen = snprintf(head, sizeof head, "PRIVMSG %s :", chan);
    size_t msglen = headlen + 9 + 1 + 19 + strlen(padding) + 2;
    outcap = (size_t)window * msglen + 1;
    out = malloc(outcap);

    printf("START\n"); fflush(stdout);
    double t0 = mono(), g0 = self_cpu(), gw0 = runq_wait(0);
    double t_end = t0 + duration, t_warm = t0 + (warmup < duration / 2 ? warmup : duration / 2);
    double t_warm_actual = t0, last_progress = t0, t;
    int warm_taken = 0;
    uint64_t warm_recv = 0, cur_min = 0, mark_sent = 0, mark_min = 0;
    while (!failure[0]) {
        t = mono();
        if (!warm_taken && t >= t_warm) { warm_recv = total; t_warm_actual = t; warm_taken = 1; }
        if (t >= t_end || (limit && sent >= (uint64_t)limit)) break;
        cur_min = lowest;
        long room = window - (long)(sent - cur_min);
        if (limit && room > (long)(limit - sent)) room = (long)(limit - sent);
        int wrote = 0;
        if (room > 0 && outlen == 0) {
            int64_t ts = wall_ns();
            for (long j = 0; j < room; j++) {
                int w = snprintf(out + outlen, outcap - outlen, "%s%09llu %019lld%s\r\n", head,
                                 (unsigned long long)(sent + j), (long long)ts, padding);
                outlen += (size_t)w;
            }
            sent += (uint64_t)room;
            flush_sender();
            wrote = 1;
        }
        poll_once(wrote ? 0 : 10);
        if (sent != mark_sent || cur_min != mark_min) { mark_sent = sent; mark_min = cur_min; last_progress = t; }
        else if (t - last_progress > timeout) {
            char why[200];
            snprintf(why, sizeof why, "the slowest member received nothing for %gs (sent %llu, it has %llu)",
                     timeout, (unsigned long long)sent, (unsigned long long)cur_min);
            fail(slowest_member(), why);
        }
    }
    double t_stop = mono(), g_stop = self_cpu(), gw_stop = runq_wait(0);
    uint64_t stop_recv = total;
    printf("STOP\n"); fflush(stdout);
    double drain_end = t_stop + drain;
    while (!failure[0] && outlen) { poll_once(10); if (mono() > drain_end) break; }
    while (!failure[0] && lowest < sent && mono() < drain_end) poll_once(10);
    double t_drain = mono();
    uint64_t lo = lowest;
    double rate;
    if (!warm_taken || t_stop - t_warm_actual < 0.5) rate = total / (t_drain - t0 > 1e-9 ? t_drain - t0 : 1e-9);
    else rate = (stop_recv - warm_recv) / (t_stop - t_warm_actual);
    double dt = t_stop - t0 > 1e-9 ? t_stop - t0 : 1e-9;
    printf("DONE {\"messages_sent\": %llu, \"deliveries\": %llu, \"elapsed_s\": %.3f, "
           "\"deliveries_per_s\": %.0f, \"deliveries_per_s_overall\": %.0f, "
           "\"generator_cpu\": %.3f, \"generator_runq_wait_ms_per_s\": %.1f",
           (unsigned long long)sent, (unsigned long long)total, t_drain - t0, rate, total / (t_drain - t0 > 1e-9 ? t_drain - t0 : 1e-9),
           (g_stop - g0) / dt, gw0 >= 0 ? (gw_stop - gw0) / dt * 1000 : -1.0);
    if (failure[0]) printf(", \"failure\": \"%s\"", failure);
    else if (lo < sent) printf(", \"failure\": \"draining: the slowest member has %llu of %llu messages after %gs\"",
                               (unsigned long long)lo, (unsigned long long)sent, drain);
    printf("}\n");
    fflush(stdout);
    return 0;
}
