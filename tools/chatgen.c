/* chatgen: the sending and receiving engine of `loadgen.py chat --engine c`.
 *
 * loadgen.py connects, registers and joins the clients, syncs them, and then
 * starts this program with the connected sockets inherited (non-blocking).
 * It reads on stdin one line per client:  "<fd> <linelen> <offset> <channel>"
 * (client 2k and 2k+1 share the channel; linelen is the length of a message
 * line from the partner without its \n, offset the position of its text),
 * and steps the offered rate as the Python engine does, printing one
 * "STEP {json}" line per step and a final "DONE {json}" line on stdout.
 *
 * Message text: "<seq, 9 digits> <CLOCK_REALTIME ns, 19 digits>" then " xxx..."
 * padding; one write per client per tick carries all its due messages.
 *
 * Usage: chatgen N TICK_MS STEP_S WARMUP_S P99_MS DRAIN_S START STEP FACTOR
 *                MAX_RATE SERVER_PID KERNEL_STAMP PAD
 * (FACTOR 0: add STEP per step; SERVER_PID 0: none; KERNEL_STAMP 0/1.)
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
#include <time.h>
#include <unistd.h>

#include "gen_common.h"

#define GROUPS 8
#define TAILMAX 4096
#define RBUF_SIZE (256 * 1024)

typedef struct {
    int fd, linelen, off, headlen, closed;
    char head[160];             /* "PRIVMSG #chan :" */
    uint64_t seq, got, exp, step_sent;
    double phase;
    char *out; size_t outlen, outcap; int want_out;
    char tail[TAILMAX]; int taillen;
    char last[200];
} Client;

static Client *cl;
static int n, ep, kernel_stamp;
static long pad;
static char rbuf[RBUF_SIZE + TAILMAX];
static int64_t *lat; static size_t nlat, caplat;
static int64_t warm_ns;
static uint64_t dups, gaps, odd;
static char failure[512];

static void fail(int i, const char *why) {
    note_failure(failure, sizeof failure, "client", i, why, cl[i].last);
    if (!cl[i].closed) { cl[i].closed = 1; epoll_ctl(ep, EPOLL_CTL_DEL, cl[i].fd, NULL); }
}

static void set_out(int i, int want) {
    if (cl[i].want_out == want) return;
    struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)i };
    epoll_ctl(ep, EPOLL_CTL_MOD, cl[i].fd, &ev);
    cl[i].want_out = want;
}

static void queue(int i, const char *d, size_t k) {
    Client *c = &cl[i];
    if (c->outlen + k > c->outcap) {
        c->outcap = (c->outlen + k) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out) { fprintf(stderr, "chatgen: out of memory\n"); exit(2); }
    }
    memcpy(c->out + c->outlen, d, k); c->outlen += k;
    set_out(i, 1);
}

static void flush_out(int i) {
    Client *c = &cl[i];
    while (c->outlen) {
        ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            fail(i, strerror(errno)); return;
        }
        memmove(c->out, c->out + w, c->outlen - w); c->outlen -= w;
    }
    set_out(i, 0);
}

static void put(int i, const char *d, size_t k) {
    Client *c = &cl[i];
    if (c->closed) return;
    if (c->outlen) { queue(i, d, k); return; }
    ssize_t w = send(c->fd, d, k, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) { fail(i, strerror(errno)); return; }
        w = 0;
    }
    if ((size_t)w < k) queue(i, d + w, k - w);
}

static int digits(const char *p, int k, int64_t *v) {
    int64_t x = 0;
    for (int j = 0; j < k; j++) { unsigned d = (unsigned char)p[j] - '0'; if (d > 9) return 0; x = x * 10 + d; }
    *v = x; return 1;
}

static void slow_line(int i, char *p, int len) {
    char pong[600];
    int k = other_line(p, len, pong, cl[i].last);
    if (k) put(i, pong, k);
    else odd++;
}

static void readable(int i) {
    Client *c = &cl[i];
    char *base = rbuf;
    memcpy(base, c->tail, c->taillen);
    struct iovec iov = { base + c->taillen, RBUF_SIZE };
    char cbuf[CMSG_SPACE(sizeof(struct timespec))];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (kernel_stamp) { mh.msg_control = cbuf; mh.msg_controllen = sizeof cbuf; }
    ssize_t r = recvmsg(c->fd, &mh, 0);
    if (r < 0) { if (errno != EAGAIN && errno != EINTR) fail(i, strerror(errno)); return; }
    if (r == 0) { fail(i, "server closed the connection"); return; }
    int64_t t = kernel_stamp ? recv_stamp(&mh, wall_ns()) : wall_ns();
    char *p = base, *end = base + c->taillen + r;
    int L = c->linelen, o = c->off;
    uint64_t e = c->exp, k = 0;
    for (;;) {
        char *nl = memchr(p, '\n', end - p);
        if (!nl) break;
        int len = (int)(nl - p);
        int64_t seq, ts;
        if (len == L && digits(p + o, 9, &seq) && p[o + 9] == ' ' && digits(p + o + 10, 19, &ts)) {
            if ((uint64_t)seq != e) { if ((uint64_t)seq < e) dups++; else gaps++; }
            e = (uint64_t)seq + 1; k++;
            if (ts >= warm_ns) {
                if (nlat == caplat) {
                    caplat = caplat ? caplat * 2 : 1 << 20;
                    lat = realloc(lat, caplat * sizeof *lat);
                    if (!lat) { fprintf(stderr, "chatgen: out of memory\n"); exit(2); }
                }
                lat[nlat++] = t - ts;
            }
        } else {
            slow_line(i, p, len);
        }
        p = nl + 1;
    }
    c->exp = e; c->got += k;
    int rest = (int)(end - p);
    if (rest > TAILMAX) rest = TAILMAX;      /* a line that long is not ours */
    memmove(c->tail, p, rest); c->taillen = rest;
}

static void poll_events(int timeout_ms) {
    static struct epoll_event evs[4096];
    int k = epoll_wait(ep, evs, 4096, timeout_ms);
    for (int j = 0; j < k; j++) {
        int i = (int)evs[j].data.u32;
        if (cl[i].closed) continue;
        if (evs[j].events & EPOLLOUT) flush_out(i);
        if (!cl[i].closed && (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) readable(i);
    }
}

static uint64_t sum_seq(void) { uint64_t s = 0; for (int i = 0; i < n; i++) s += cl[i].seq; return s; }
static uint64_t sum_got(void) { uint64_t s = 0; for (int i = 0; i < n; i++) s += cl[i].got; return s; }
int main(int argc, char **argv) {
    if (argc != 14) { fprintf(stderr, "usage: see the head of chatgen.c\n"); return 2; }
    n = atoi(argv[1]);
    double tick = atof(argv[2]) / 1000.0, step_s = atof(argv[3]), warmup = atof(argv[4]);
    double p99_ms = atof(argv[5]), drain = atof(argv[6]), rate = atof(argv[7]), step = atof(argv[8]);
    double factor = atof(argv[9]), max_rate = atof(argv[10]);
    int pid = atoi(argv[11]); kernel_stamp = atoi(argv[12]); pad = atol(argv[13]);
    cl = calloc(n, sizeof *cl);
    ep = epoll_create1(0);
    char padding[1024] = "";
    if (pad > 0) { if (pad > 1000) pad = 1000; padding[0] = ' '; memset(padding + 1, 'x', pad - 1); padding[pad] = 0; }
    for (int i = 0; i < n; i++) {
        char chan[100];
        if (scanf("%d %d %d %99s", &cl[i].fd, &cl[i].linelen, &cl[i].off, chan) != 4) {
            fprintf(stderr, "chatgen: bad client line %d on stdin\n", i); return 2;
        }
        cl[i].headlen = snprintf(cl[i].head, sizeof cl[i].head, "PRIVMSG %s :", chan);
        double ph = i * 0.6180339887498949;
        cl[i].phase = ph - (double)(long)ph;
        if (kernel_stamp) { int one = 1; setsockopt(cl[i].fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one); }
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) < 0) { perror("chatgen: epoll_ctl"); return 2; }
    }
    double held = 0; const char *stopped = "reached --max-rate";
    static char why[1024];
    char msg[64 * 1024];
    while (rate <= max_rate + 1e-9) {
        double rpc = rate / n, sub = tick / GROUPS, warm = warmup < step_s / 2 ? warmup : step_s / 2;
        for (int i = 0; i < n; i++) cl[i].step_sent = 0;
        nlat = 0;
        uint64_t sent0 = sum_seq(), got0 = sum_got(), dups0 = dups, gaps0 = gaps;
        uint64_t sent_w = sent0, got_w = got0, sent_end, got_end;
        double late_total = 0, late_max = 0, g0 = 0, s0 = 0, gw0 = 0, sw0 = 0, t_warm;
        long ticks = 0, behind = 0; int metered = 0;
        double t0 = mono();
        warm_ns = wall_ns() + (int64_t)(warm * 1e9);
        t_warm = t0 + warm;
        double t_end = t0 + step_s;
        for (long s = 0; !failure[0]; s++) {
            double t_s = t0 + s * sub;
            if (t_s >= t_end) break;
            double t = mono();
            while (t < t_s && !failure[0]) {
                poll_events((int)((t_s - t) * 1000) + 1);    /* whole ms, rounded up: no spinning */
                t = mono();
            }
            if (!metered && t >= t_warm) {
                metered = 1; t_warm = t; g0 = self_cpu(); s0 = pid ? proc_cpu(pid) : 0;
                gw0 = runq_wait(0); sw0 = pid ? runq_wait(pid) : 0;
                sent_w = sum_seq(); got_w = sum_got();
            }
            double late = t - t_s; late_total += late; if (late > late_max) late_max = late; ticks++;
            if (late > tick) behind++;      /* more than a whole tick behind the schedule */
            double el = t - t0;
            for (int i = (int)(s % GROUPS); i < n; i += GROUPS) {
                Client *c = &cl[i];
                long due = (long)(rpc * el + c->phase) - (long)c->step_sent;
                if (due <= 0 || c->closed) continue;
                int64_t ts = wall_ns();
                size_t k = 0;
                for (long j = 0; j < due; j++) {
                    if (k + 300 > sizeof msg) { put(i, msg, k); k = 0; }
                    memcpy(msg + k, c->head, c->headlen); k += c->headlen;
                    k += sprintf(msg + k, "%09llu %019lld%s\r\n", (unsigned long long)(c->seq + j), (long long)ts, padding);
                }
                c->seq += due; c->step_sent += due;
                put(i, msg, k);
            }
            poll_events(0);
        }
        double t_stop = mono();
        double dt = t_stop - t_warm; if (dt < 1e-9) dt = 1e-9;
        double gcpu = metered ? (self_cpu() - g0) / dt : -1;
        double scpu = metered && pid ? (proc_cpu(pid) - s0) / dt : -1;
        double gwait = metered ? (runq_wait(0) - gw0) / dt * 1000 : -1;
        double swait = metered && pid ? (runq_wait(pid) - sw0) / dt * 1000 : -1;
        sent_end = sum_seq(); got_end = sum_got();
        double deadline = mono() + drain;
        while (!failure[0] && sum_got() < sent_end && mono() < deadline) poll_events(20);
        uint64_t got_all = sum_got();
        qsort(lat, nlat, sizeof *lat, cmp64);
        double p50 = pct_ms(lat, nlat, 50), p99 = pct_ms(lat, nlat, 99), mx = nlat ? lat[nlat - 1] / 1e6 : -1;
        uint64_t lost = sent_end - got_all;
        why[0] = 0;
        if (failure[0]) snprintf(why + strlen(why), sizeof why - strlen(why), "failed: %s; ", failure);
        if (lost) snprintf(why + strlen(why), sizeof why - strlen(why), "%llu messages not delivered within %gs; ", (unsigned long long)lost, drain);
        if (dups != dups0 || gaps != gaps0)
            snprintf(why + strlen(why), sizeof why - strlen(why), "%llu duplicated, %llu out of order; ",
                     (unsigned long long)(dups - dups0), (unsigned long long)(gaps - gaps0));
        double behind_frac = (double)behind / (ticks ? ticks : 1);
        if (behind_frac > 0.01)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     "generator behind its schedule: %.1f%% of sub-ticks more than a tick late (max %.0f ms); ",
                     behind_frac * 100, late_max * 1e3);
        if (!nlat) snprintf(why + strlen(why), sizeof why - strlen(why), "no latency samples; ");
        else if (p99 > p99_ms) snprintf(why + strlen(why), sizeof why - strlen(why), "p99 %.3f ms > %g ms; ", p99, p99_ms);
        if (why[0]) why[strlen(why) - 2] = 0;
        printf("STEP {\"rate\": %.0f, \"sent_per_s\": %.0f, \"delivered_per_s\": %.0f, \"messages_sent\": %llu, "
               "\"messages_delivered\": %llu, \"lost\": %llu, \"duplicated\": %llu, \"out_of_order\": %llu, "
               "\"samples\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
               "\"tick_late_mean_ms\": %.3f, \"tick_late_max_ms\": %.3f, \"ticks_behind\": %.4f, "
               "\"generator_cpu\": %.3f",
               rate, (sent_end - sent_w) / dt, (got_end - got_w) / dt,
               (unsigned long long)(sent_end - sent0), (unsigned long long)(got_all - got0),
               (unsigned long long)lost, (unsigned long long)(dups - dups0), (unsigned long long)(gaps - gaps0),
               nlat, p50, p99, mx, late_total / (ticks ? ticks : 1) * 1e3, late_max * 1e3, behind_frac, gcpu);
        if (gwait >= 0) printf(", \"generator_runq_wait_ms_per_s\": %.1f", gwait);
        if (scpu >= 0) printf(", \"server_cpu\": %.3f", scpu);
        if (swait >= 0) printf(", \"server_runq_wait_ms_per_s\": %.1f", swait);
        printf(", \"held\": %s", why[0] ? "false" : "true");
        if (why[0]) printf(", \"why\": \"%s\"", why);
        printf("}\n");
        fflush(stdout);
        if (why[0]) { stopped = why; break; }
        held = rate;
        rate = factor > 0 ? rate * factor : rate + step;
        /* let the server settle (bounded): wait while it still uses >10% of a core */
        for (int w = 0; pid && w < 10; w++) {
            double a = proc_cpu(pid); poll_events(500); double b = proc_cpu(pid);
            if (a < 0 || b < 0 || (b - a) / 0.5 < 0.10) break;
        }
    }
    printf("DONE {\"held_msgs_per_s\": %.0f, \"stopped\": \"%s\"}\n", held, stopped);
    fflush(stdout);
    return 0;
}
