// How a worker takes connections from one listener when epoll wakes it: how many per
// wake-up, and how long it keeps its place in the listener's wake-up order.
#pragma once

#include <cstdint>

namespace preforkd::detail {

struct accept_policy {
    int batch;        // connections taken per wake-up
    int64_t turn_ms;  // then re-registered (last in the wake-up order) after this long
};

// Plain listeners: a batch drains a burst cheaply, and few enough that one worker does not
// swallow a whole backlog while its peers sleep. EPOLLEXCLUSIVE wakes the first waiting
// worker in the order their epoll sets registered the listener: an idle worker early in
// that order takes nearly every connection (measured: 5162/3417/1957/1070 over 4 workers).
// So the workers take turns: a worker keeps its place for turn_ms after its first accept,
// then registers the listener again, which moves it to the end of the order. Within a turn
// one worker takes what it can (warm caches, and a burst of keep-alive connections lands on
// one worker, which on a small machine serves them with fewer wake-ups and a shorter tail
// than two would). (Turns of 16 accepts instead spread every burst; measured with
// tests/bench, 2 CPUs: keep-alive p99 1.4-2.3 ms against 0.4-0.6 ms, same spread in c.)
//
// TLS listeners: a full handshake costs some 250-300 us of CPU, 25 times a small plain
// request, and a connection stays with the worker that accepted it. A worker taking a
// burst then runs its handshakes one after the other while its peers sleep: on 2 CPUs the
// new-connection HTTPS benchmark (scenario h) ran at 0.5-0.8x nginx for the same CPU per
// request. So one connection per wake-up and a new turn after each (nginx's multi_accept
// off): the next connection wakes whichever worker waits, and two epoll_ctl calls are
// nothing next to a handshake.
constexpr accept_policy accept_policy_for(bool tls) noexcept {
    return tls ? accept_policy{1, 0} : accept_policy{16, 10};
}

}  // namespace preforkd::detail
