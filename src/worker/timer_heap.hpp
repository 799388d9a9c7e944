// The sessions' deadlines: a binary min-heap of connection records, each record holding its
// own place in the heap (intrusive), so that adding, moving or removing one is O(log n)
// without allocating (the vector is reserved once), and the next deadline is O(1).
//
// Kept lazy by the loop: a deadline that moves later (every keep-alive request pushes it by
// the timeout) leaves the record where it is, and the record is moved only when that earlier
// time comes. So the hot path costs one comparison, and the heap one sift per record per
// timeout period (nginx defers its timer-tree updates for the same reason).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace preforkd::detail {

// T has `int64_t timer_at` (the key; 0 = not in the heap) and `uint32_t timer_pos`.
template <class T>
class timer_heap {
  public:
    void reserve(size_t n) { v_.reserve(n); }
    bool empty() const noexcept { return v_.empty(); }
    size_t size() const noexcept { return v_.size(); }
    T* top() const noexcept { return v_.empty() ? nullptr : v_.front(); }
    // The earliest key, INT64_MAX when empty.
    int64_t next() const noexcept { return v_.empty() ? INT64_MAX : v_.front()->timer_at; }

    // Puts `t` in the heap at `at` (> 0), or moves it there.
    void set(T& t, int64_t at) noexcept {
        if (t.timer_at == 0) {
            t.timer_at = at;
            t.timer_pos = static_cast<uint32_t>(v_.size());
            v_.push_back(&t);  // never grows beyond the reservation (one per connection)
            up(t.timer_pos);
            return;
        }
        const int64_t old = t.timer_at;
        t.timer_at = at;
        if (at < old)
            up(t.timer_pos);
        else
            down(t.timer_pos);
    }

    // Takes `t` out of the heap (nothing if it is not in it).
    void remove(T& t) noexcept {
        if (t.timer_at == 0) return;
        const uint32_t i = t.timer_pos;
        T* last = v_.back();
        v_.pop_back();
        t.timer_at = 0;
        if (last == &t) return;
        v_[i] = last;
        last->timer_pos = i;
        up(i);
        down(last->timer_pos);
    }

  private:
    void place(uint32_t i, T* t) noexcept {
        v_[i] = t;
        t->timer_pos = i;
    }
    void up(uint32_t i) noexcept {
        T* t = v_[i];
        while (i > 0) {
            const uint32_t parent = (i - 1) / 2;
            if (v_[parent]->timer_at <= t->timer_at) break;
            place(i, v_[parent]);
            i = parent;
        }
        place(i, t);
    }
    void down(uint32_t i) noexcept {
        T* t = v_[i];
        const auto n = static_cast<uint32_t>(v_.size());
        for (;;) {
            uint32_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && v_[child + 1]->timer_at < v_[child]->timer_at) ++child;
            if (t->timer_at <= v_[child]->timer_at) break;
            place(i, v_[child]);
            i = child;
        }
        place(i, t);
    }

    std::vector<T*> v_;
};

}  // namespace preforkd::detail
