/* tls_conn_client.c - HTTPS load with a new TLS connection per request, resumed or not.
 *
 *   tls_conn_client [-r] [-c CONNS] [-d SECONDS] PORT PATH
 *
 * wrk cannot resume TLS sessions, so scenario g of tests/bench/https.sh needs its own
 * client. CONNS slots run concurrently on one thread (epoll, non-blocking OpenSSL): each
 * connects to 127.0.0.1:PORT, handshakes, sends one `GET PATH` with `Connection: close`,
 * reads the whole response (by Content-Length), closes, and starts over. With -r every
 * slot offers the session of its previous connection (a TLS 1.3 ticket or a TLS 1.2
 * ticket/session id), so every handshake but a slot's first can resume; without -r each
 * handshake is a full one. Like browsers and wrk, it offers a TLS 1.3 ticket once: a
 * server that hands out no new ticket on a resumed connection gets a full handshake on
 * that slot's next one (the resumed count shows it: about 50%).
 *
 * Output (one line, key=value): requests, req_per_s, handshakes, resumed (handshakes the
 * server accepted as resumptions: SSL_session_reused), errors (failed connections or
 * handshakes, non-200 answers), p50_ms and p99_ms (connect to last body byte), protocol
 * and cipher of the last handshake. The certificate is not verified: this is a load tool
 * for loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum phase { CONNECTING, HANDSHAKE, WRITING, READING };

struct slot {
    int fd;
    SSL *ssl;
    SSL_SESSION *session; /* offered on the next connection (-r) */
    enum phase phase;
    double started;
    size_t sent;
    char head[4096];
    size_t head_len;
    long body_left; /* -1 until the header block is complete */
    int status;
};

static SSL_CTX *ctx;
static int ep, port, resume;
static char request[1024];
static size_t request_len;
static unsigned long requests, handshakes, resumed, errors;
static double *lat;
static size_t lat_n, lat_cap;
static const char *last_proto = "-", *last_cipher = "-"; /* OpenSSL's static names */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void watch(struct slot *s, unsigned events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(ep, op, s->fd, &ev) != 0) {
        perror("epoll_ctl");
        exit(2);
    }
}

static void start(struct slot *s) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->started = now();
    s->ssl = NULL;
    s->sent = 0;
    s->head_len = 0;
    s->body_left = -1;
    s->status = 0;
    if (connect(s->fd, (struct sockaddr *)&a, sizeof a) == 0 || errno == EINPROGRESS) {
        s->phase = CONNECTING;
        watch(s, EPOLLOUT, EPOLL_CTL_ADD);
        return;
    }
    errors++;
    close(s->fd);
    s->fd = -1;
}

static void finish(struct slot *s, int ok) {
    if (s->ssl) {
        if (ok) {
            if (resume) {
                SSL_SESSION *next = SSL_get1_session(s->ssl);
                /* A TLS 1.3 ticket is used once (RFC 8446, C.4; browsers and wrk do so):
                 * after a resumption the slot keeps only a ticket that connection brought.
                 * A server that sent none gets a full handshake next time. TLS 1.2
                 * sessions are reused, as clients do. */
                int used_up = next && next == s->session && SSL_session_reused(s->ssl) &&
                              SSL_version(s->ssl) == TLS1_3_VERSION;
                if (next && SSL_SESSION_is_resumable(next) && !used_up) {
                    if (s->session) SSL_SESSION_free(s->session);
                    s->session = next;
                } else {
                    if (next) SSL_SESSION_free(next);
                    if (used_up) {
                        SSL_SESSION_free(s->session);
                        s->session = NULL;
                    }
                }
            }
            SSL_shutdown(s->ssl); /* close_notify, not waiting for the peer's */
        }
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    close(s->fd); /* also drops it from the epoll set */
    s->fd = -1;
    if (ok) {
        requests++;
        if (lat_n == lat_cap) {
            lat_cap = lat_cap ? lat_cap * 2 : 65536;
            lat = realloc(lat, lat_cap * sizeof *lat);
            if (!lat) exit(2);
        }
        lat[lat_n++] = now() - s->started;
    } else {
        errors++;
    }
}

/* Parses the header block once it is complete: the status and Content-Length. */
static int parse_head(struct slot *s, size_t *body_in_head) {
    char *end = memmem(s->head, s->head_len, "\r\n\r\n", 4);
    if (!end) return s->head_len < sizeof s->head - 1 ? 0 : -1;
    *end = 0;
    if (sscanf(s->head, "HTTP/1.%*d %d", &s->status) != 1) return -1;
    long len = -1;
    for (char *p = strstr(s->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, "content-length:", 15) == 0) len = strtol(p + 17, NULL, 10);
    if (len < 0) return -1;
    *body_in_head = s->head_len - (size_t)(end + 4 - s->head);
    s->body_left = len - (long)*body_in_head;
    return 1;
}

/* Drives one slot as far as it goes without blocking. */
static void step(struct slot *s) {
    int rc;
    if (s->phase == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            finish(s, 0);
            return;
        }
        s->ssl = SSL_new(ctx);
        SSL_set_fd(s->ssl, s->fd);
        SSL_set_connect_state(s->ssl);
        if (resume && s->session) SSL_set_session(s->ssl, s->session);
        s->phase = HANDSHAKE;
    }
    if (s->phase == HANDSHAKE) {
        rc = SSL_do_handshake(s->ssl);
        if (rc != 1) {
            int e = SSL_get_error(s->ssl, rc);
            if (e == SSL_ERROR_WANT_READ) { watch(s, EPOLLIN, EPOLL_CTL_MOD); return; }
            if (e == SSL_ERROR_WANT_WRITE) { watch(s, EPOLLOUT, EPOLL_CTL_MOD); return; }
            ERR_clear_error();
            finish(s, 0);
            return;
        }
        handshakes++;
        if (SSL_session_reused(s->ssl)) resumed++;
        last_proto = SSL_get_version(s->ssl);
        last_cipher = SSL_get_cipher_name(s->ssl);
        s->phase = WRITING;
    }
    if (s->phase == WRITING) {
        while (s->sent < request_len) {
            rc = SSL_write(s->ssl, request + s->sent, (int)(request_len - s->sent));
            if (rc <= 0) {
                int e = SSL_get_error(s->ssl, rc);
                if (e == SSL_ERROR_WANT_READ) { watch(s, EPOLLIN, EPOLL_CTL_MOD); return; }
                if (e == SSL_ERROR_WANT_WRITE) { watch(s, EPOLLOUT, EPOLL_CTL_MOD); return; }
                ERR_clear_error();
                finish(s, 0);
                return;
            }
            s->sent += (size_t)rc;
        }
        s->phase = READING;
    }
    for (;;) { /* READING */
        char buf[65536];
        char *into = s->body_left < 0 ? s->head + s->head_len : buf;
        int room = s->body_left < 0 ? (int)(sizeof s->head - 1 - s->head_len) : (int)sizeof buf;
        rc = SSL_read(s->ssl, into, room);
        if (rc <= 0) {
            int e = SSL_get_error(s->ssl, rc);
            if (e == SSL_ERROR_WANT_READ) { watch(s, EPOLLIN, EPOLL_CTL_MOD); return; }
            if (e == SSL_ERROR_WANT_WRITE) { watch(s, EPOLLOUT, EPOLL_CTL_MOD); return; }
            ERR_clear_error();
            finish(s, 0); /* closed before the whole body */
            return;
        }
        if (s->body_left < 0) {
            size_t in_head = 0;
            s->head_len += (size_t)rc;
            int p = parse_head(s, &in_head);
            if (p < 0) { finish(s, 0); return; }
            if (p == 0) continue;
        } else {
            s->body_left -= rc;
        }
        if (s->body_left <= 0) {
            finish(s, s->status == 200 && s->body_left == 0);
            return;
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int conns = 50, opt;
    double seconds = 10;
    while ((opt = getopt(argc, argv, "rc:d:")) != -1) {
        switch (opt) {
        case 'r': resume = 1; break;
        case 'c': conns = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        default: goto usage;
        }
    }
    if (argc - optind != 2 || conns < 1 || seconds <= 0) {
    usage:
        fprintf(stderr, "usage: tls_conn_client [-r] [-c CONNS] [-d SECONDS] PORT PATH\n");
        return 2;
    }
    port = atoi(argv[optind]);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                   argv[optind + 1]);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Sessions are kept per slot by hand; the internal cache would only add work. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct slot *slots = calloc((size_t)conns, sizeof *slots);
    for (int i = 0; i < conns; i++) start(&slots[i]);
    double t0 = now(), deadline = t0 + seconds;
    struct epoll_event evs[256];
    while (now() < deadline) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            step(s);
            if (s->fd < 0 && now() < deadline) start(s);
        }
        if (errors > 1000 && requests == 0) break; /* nothing listens or answers */
    }
    double took = now() - t0;
    qsort(lat, lat_n, sizeof *lat, cmp);
    double p50 = lat_n ? lat[lat_n / 2] * 1e3 : 0, p99 = lat_n ? lat[lat_n * 99 / 100] * 1e3 : 0;
    printf("requests=%lu req_per_s=%.1f handshakes=%lu resumed=%lu errors=%lu p50_ms=%.3f "
           "p99_ms=%.3f protocol=%s cipher=%s\n",
           requests, requests / took, handshakes, resumed, errors, p50, p99, last_proto, last_cipher);
    return requests ? 0 : 1;
}
