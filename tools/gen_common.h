/* What tools/chatgen.c, tools/fangen.c and tools/latgen.c share: clocks, CPU and run-queue figures,
 * percentiles, receive stamps, PING answers and the failure message. Header-only:
 * each engine is one `gcc -O2` of its .c file (loadgen.py's c_engine). */
#ifndef GEN_COMMON_H
#define GEN_COMMON_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static inline int64_t wall_ns(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static inline double self_cpu(void) {
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) pid has used, or -1. */
static inline double proc_cpu(int pid) {
    char path[64], data[2048]; FILE *f; size_t k;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r"))) return -1;
    k = fread(data, 1, sizeof data - 1, f); fclose(f); data[k] = 0;
    char *p = strrchr(data, ')'); if (!p) return -1;
    unsigned long ut = 0, st = 0; int field = 2;
    for (p += 2; *p && field < 13; p++) if (*p == ' ') field++;
    if (sscanf(p, "%lu %lu", &ut, &st) != 2) return -1;
    return (ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds pid (0: this process) has been runnable but waiting for a CPU, or -1. */
static inline double runq_wait(int pid) {
    char path[64]; unsigned long long run = 0, wait = 0; FILE *f;
    if (pid) snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    else snprintf(path, sizeof path, "/proc/self/schedstat");
    if (!(f = fopen(path, "r"))) return -1;
    if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
    fclose(f);
    return wait / 1e9;
}

static inline int cmp64(const void *a, const void *b) { int64_t x = *(const int64_t *)a, y = *(const int64_t *)b; return (x > y) - (x < y); }

/* Nearest-rank percentile (as loadgen.py) of n sorted nanosecond values, in ms; -1 if none. */
static inline double pct_ms(const int64_t *v, size_t n, double p) {
    if (!n) return -1;
    long k = (long)(p / 100.0 * n + 0.5 + 0.5) - 1;
    if (k < 0) k = 0;
    if (k > (long)n - 1) k = n - 1;
    return v[k] / 1e6;
}

/* The kernel's receive time (SO_TIMESTAMPNS) of what recvmsg read, else `otherwise`. */
static inline int64_t recv_stamp(struct msghdr *mh, int64_t otherwise) {
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts; memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    return otherwise;
}

/* One whole write of a small piece (a PONG, a latency message): NULL, or why not.
 * A full socket buffer for one means something is wrong. */
static inline const char *send_whole(int fd, const char *d, size_t k) {
    ssize_t w = send(fd, d, k, MSG_NOSIGNAL);
    if (w < 0) return strerror(errno);
    if ((size_t)w < k) return "the socket's send buffer is full";
    return NULL;
}

/* A line that is not a benchmark message: the PONG to write into `pong` (600 bytes)
 * if it is a server PING (its length), else 0 after keeping it in `last` (200 bytes)
 * for the failure message. */
static inline int other_line(const char *p, int len, char *pong, char *last) {
    if (len && p[len - 1] == '\r') len--;
    const char *q = p;
    if (len && *q == ':') { const char *sp = memchr(q, ' ', len); if (!sp) goto other; q = sp + 1; }
    if (len - (q - p) >= 4 && !memcmp(q, "PING", 4)) {
        int k = len - (int)(q - p) - 4; if (k > 500) k = 500;
        memcpy(pong, "PONG", 4); memcpy(pong + 4, q + 4, k); memcpy(pong + 4 + k, "\r\n", 2);
        return 4 + k + 2;
    }
other:;
    int k = len < 199 ? len : 199;
    memcpy(last, p, k); last[k] = 0;
    return 0;
}

/* The first failure, "<who> <i>: <why>", with the client's last odd line, JSON-safe. */
static inline void note_failure(char *failure, size_t cap, const char *who, int i, const char *why, const char *last) {
    if (failure[0]) return;
    snprintf(failure, cap, "%s %d: %s", who, i, why);
    if (last[0]) {
        size_t k = strlen(failure);
        snprintf(failure + k, cap - k, "; last line from server: ");
        k = strlen(failure);
        for (const char *p = last; *p && k < cap - 1; p++)
            failure[k++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 32) ? '?' : *p;
        failure[k] = 0;
    }
}
#endif
