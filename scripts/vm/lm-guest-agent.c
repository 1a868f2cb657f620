/* lm-guest-agent: the responders of the LM Router test guest (scripts/vm/build-guest.sh links it
 * statically into the guest's initramfs; busybox has no UDP server and no paced TCP writer).
 *
 *   lm-guest-agent [--tcp PORT] [--rate LINES_PER_S] [--echo PORT] [--sink PORT]
 *
 * All sockets are IPv6 dual stack ([::]:PORT, IPV6_V6ONLY off), one thread, poll().
 *
 * --tcp PORT (default 7000): sequence-numbered TCP stream. Every accepted connection gets its own
 *     stream of text lines "SEQ GUEST_US\n" (SEQ from 0, +1 per line; GUEST_US = the guest's
 *     CLOCK_MONOTONIC in microseconds when the line was made), paced at --rate lines/s (default
 *     100). A line is made only when it can be queued (64 KiB per connection), so the sequence has
 *     no hole even if the peer stalls: a stall shows as a late line, never as a missing one.
 *     Bytes the peer sends are read and discarded.
 * --echo PORT (default 7001): UDP echo, every datagram goes back to its sender unchanged.
 * --sink PORT (default 7002): UDP sink for the e2e stream format (test/e2e/udpstream.py):
 *     payload b"LMSQ", stream id (u32), sequence (u64), send time (f64), all big endian. Per
 *     stream id (up to 8 at once) it counts datagrams, distinct sequence numbers (bitmap of the
 *     first 2^20), duplicates, reordered (arrived after a higher sequence), the highest sequence,
 *     the largest gap between arrivals (guest clock) and the sequence after it.
 *     Queries, as a datagram to the same port, answered to the sender with one JSON line:
 *       "STAT ID"   the stream's counters ({"stream":ID,"found":false} if none)
 *       "RESET ID"  forget the stream ("RESET *": all)
 *       "PING"      {"pong":true,"uptime_us":N}
 * A port of 0 turns that responder off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define CLIENT_BUF 65536
#define MAX_STREAMS 8
#define BITMAP_SEQS (1u << 20)

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int listen_socket(int type, int port)
{
    int fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("lm-guest-agent: socket");
        return -1;
    }
    int zero = 0, one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (type == SOCK_DGRAM) {
        int sz = 1 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    struct sockaddr_in6 a = {0};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    a.sin6_addr = in6addr_any;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
        fprintf(stderr, "lm-guest-agent: bind/listen port %d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct client {
    int fd;
    uint64_t seq;        /* next sequence number */
    uint64_t start_us;   /* when the connection was accepted */
    char buf[CLIENT_BUF];
    size_t off, len;     /* unsent bytes: buf[off, off+len) */
};

struct stream {
    int used;
    uint32_t id;
    uint64_t datagrams, distinct, duplicates, reordered, max_seq, beyond_bitmap;
    uint64_t first_us, last_us, max_gap_us, max_gap_seq;
    uint8_t *bitmap;
};

static struct client clients[MAX_CLIENTS];
static struct stream streams[MAX_STREAMS];
static double rate = 100.0;
static uint64_t boot_us;

static void client_close(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Queue the lines that are due and write what the socket takes. */
static void client_service(struct client *c, uint64_t t)
{
    uint64_t due = (uint64_t)((double)(t - c->start_us) * rate / 1e6) + 1;
    while (c->seq < due) {
        if (c->off + c->len > CLIENT_BUF - 64) {   /* compact, or stop making lines */
            if (c->off == 0)
                break;
            memmove(c->buf, c->buf + c->off, c->len);
            c->off = 0;
            if (c->len > CLIENT_BUF - 64)
                break;
        }
        int n = snprintf(c->buf + c->off + c->len, 64, "%llu %llu\n", (unsigned long long)c->seq,
                         (unsigned long long)t);
        c->len += (size_t)n;
        c->seq++;
    }
    while (c->len > 0) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            client_close(c);
            return;
        }
        c->off += (size_t)w;
        c->len -= (size_t)w;
    }
    c->off = 0;
}

static struct stream *stream_get(uint32_t id, int create)
{
    struct stream *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_STREAMS; i++) {
        struct stream *s = &streams[i];
        if (s->used && s->id == id)
            return s;
        if (!s->used && !free_slot)
            free_slot = s;
        if (s->used && (!oldest || s->last_us < oldest->last_us))
            oldest = s;
    }
    if (!create)
        return NULL;
    struct stream *s = free_slot ? free_slot : oldest;
    uint8_t *bm = s->bitmap;
    if (!bm)
        bm = malloc(BITMAP_SEQS / 8);
    if (!bm)
        return NULL;
    memset(s, 0, sizeof *s);
    memset(bm, 0, BITMAP_SEQS / 8);
    s->bitmap = bm;
    s->used = 1;
    s->id = id;
    return s;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void sink_datagram(int fd, const uint8_t *d, ssize_t n, struct sockaddr *src, socklen_t srclen)
{
    uint64_t t = now_us();
    if (n >= 24 && memcmp(d, "LMSQ", 4) == 0) {
        uint32_t id = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
        uint64_t seq = be64(d + 8);
        struct stream *s = stream_get(id, 1);
        if (!s)
            return;
        s->datagrams++;
        if (s->datagrams == 1) {
            s->first_us = t;
        } else if (t - s->last_us > s->max_gap_us) {
            s->max_gap_us = t - s->last_us;
            s->max_gap_seq = seq;
        }
        s->last_us = t;
        int dup = 0;
        if (seq < BITMAP_SEQS) {
            uint8_t bit = (uint8_t)(1u << (seq & 7));
            if (s->bitmap[seq >> 3] & bit)
                dup = 1;
            else
                s->bitmap[seq >> 3] |= bit;
        } else {
            s->beyond_bitmap++;
        }
        if (dup) {
            s->duplicates++;
        } else {
            s->distinct++;
            if (s->datagrams > 1 && seq < s->max_seq)
                s->reordered++;
        }
        if (s->datagrams == 1 || seq > s->max_seq)
            s->max_seq = seq;
        return;
    }
    char q[64] = {0}, out[512];
    memcpy(q, d, n < 63 ? (size_t)n : 63);
    q[strcspn(q, "\r\n")] = 0;
    int len;
    if (strncmp(q, "STAT ", 5) == 0) {
        uint32_t id = (uint32_t)strtoul(q + 5, NULL, 0);
        struct stream *s = stream_get(id, 0);
        if (!s)
            len = snprintf(out, sizeof out, "{\"stream\":%u,\"found\":false}\n", id);
        else
            len = snprintf(out, sizeof out,
                           "{\"stream\":%u,\"found\":true,\"datagrams\":%llu,\"distinct\":%llu,\"duplicates\":%llu,"
                           "\"reordered\":%llu,\"max_seq\":%llu,\"beyond_bitmap\":%llu,\"first_us\":%llu,"
                           "\"last_us\":%llu,\"max_gap_us\":%llu,\"max_gap_seq\":%llu,\"now_us\":%llu}\n",
                           id, (unsigned long long)s->datagrams, (unsigned long long)s->distinct,
                           (unsigned long long)s->duplicates, (unsigned long long)s->reordered,
                           (unsigned long long)s->max_seq, (unsigned long long)s->beyond_bitmap,
                           (unsigned long long)s->first_us, (unsigned long long)s->last_us,
                           (unsigned long long)s->max_gap_us, (unsigned long long)s->max_gap_seq,
                           (unsigned long long)t);
    } else if (strncmp(q, "RESET ", 6) == 0) {
        if (q[6] == '*') {
            for (int i = 0; i < MAX_STREAMS; i++)
                streams[i].used = 0;
        } else {
            struct stream *s = stream_get((uint32_t)strtoul(q + 6, NULL, 0), 0);
            if (s)
                s->used = 0;
        }
        len = snprintf(out, sizeof out, "{\"reset\":true}\n");
    } else if (strcmp(q, "PING") == 0) {
        len = snprintf(out, sizeof out, "{\"pong\":true,\"uptime_us\":%llu}\n", (unsigned long long)(t - boot_us));
    } else {
        return;
    }
    sendto(fd, out, (size_t)len, MSG_DONTWAIT, src, srclen);
}

static int arg_int(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "lm-guest-agent: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return atoi(argv[++*i]);
}

int main(int argc, char **argv)
{
    int tcp_port = 7000, echo_port = 7001, sink_port = 7002;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tcp"))
            tcp_port = arg_int(argc, argv, &i);
        else if (!strcmp(argv[i], "--echo"))
            echo_port = arg_int(argc, argv, &i);
        else if (!strcmp(argv[i], "--sink"))
            sink_port = arg_int(argc, argv, &i);
        else if (!strcmp(argv[i], "--rate")) {
            rate = (double)arg_int(argc, argv, &i);
            if (rate < 1)
                rate = 1;
        } else {
            fprintf(stderr, "usage: lm-guest-agent [--tcp PORT] [--rate N] [--echo PORT] [--sink PORT]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    boot_us = now_us();
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    int lfd = tcp_port ? listen_socket(SOCK_STREAM, tcp_port) : -1;
    int efd = echo_port ? listen_socket(SOCK_DGRAM, echo_port) : -1;
    int sfd = sink_port ? listen_socket(SOCK_DGRAM, sink_port) : -1;
    if ((tcp_port && lfd < 0) || (echo_port && efd < 0) || (sink_port && sfd < 0))
        return 1;
    printf("lm-guest-agent: tcp stream %d (%.0f lines/s), udp echo %d, udp sink %d\n", tcp_port, rate, echo_port,
           sink_port);
    fflush(stdout);

    uint64_t tick_us = (uint64_t)(1e6 / rate);
    if (tick_us < 1000)
        tick_us = 1000;
    static uint8_t dbuf[65536];
    for (;;) {
        struct pollfd p[3 + MAX_CLIENTS];
        int np = 0, nclients = 0;
        p[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        p[np++] = (struct pollfd){.fd = efd, .events = POLLIN};
        p[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            p[np++] = (struct pollfd){.fd = c->fd, .events = (short)(c->fd >= 0 ? (POLLIN | (c->len ? POLLOUT : 0)) : 0)};
            nclients += c->fd >= 0;
        }
        int r = poll(p, (nfds_t)np, nclients ? (int)(tick_us / 1000) : -1);
        if (r < 0 && errno != EINTR) {
            perror("lm-guest-agent: poll");
            return 1;
        }
        uint64_t t = now_us();
        if (lfd >= 0 && (p[0].revents & POLLIN)) {
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                struct client *c = NULL;
                for (int i = 0; i < MAX_CLIENTS && !c; i++)
                    if (clients[i].fd < 0)
                        c = &clients[i];
                if (!c) {
                    close(fd);
                    continue;
                }
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                c->seq = 0;
                c->start_us = t;
                c->off = c->len = 0;
            }
        }
        for (int k = 1; k <= 2; k++) {
            int fd = p[k].fd;
            if (fd < 0 || !(p[k].revents & POLLIN))
                continue;
            for (int burst = 0; burst < 256; burst++) {
                struct sockaddr_storage src;
                socklen_t sl = sizeof src;
                ssize_t n = recvfrom(fd, dbuf, sizeof dbuf, MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
                if (n < 0)
                    break;
                if (fd == efd)
                    sendto(efd, dbuf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&src, sl);
                else
                    sink_datagram(sfd, dbuf, n, (struct sockaddr *)&src, sl);
            }
        }
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->fd < 0)
                continue;
            short re = p[3 + i].revents;
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = recv(c->fd, dbuf, sizeof dbuf, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    client_close(c);
                    continue;
                }
            }
            client_service(c, t);
        }
    }
}
