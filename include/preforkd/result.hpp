// result<T>: a value or an error (std::error_code + message). g++ 12 has no std::expected.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace preforkd {

// What went wrong, said once: `message` is the whole line a user reads
// ("/etc/preforkd/preforkd.toml:12: workers.max (2) must be >= workers.start (4)").
struct error {
    std::error_code code;
    std::string message;

    error() = default;
    explicit error(std::string msg)
        : code(std::make_error_code(std::errc::invalid_argument)), message(std::move(msg)) {}
    error(std::error_code ec, std::string msg) : code(ec), message(std::move(msg)) {}

    // `what: strerror(errno)`; read errno at the call site, before anything else can change it.
    static error from_errno(int err, std::string_view what) {
        std::error_code ec(err, std::system_category());
        return error(ec, std::string(what) + ": " + ec.message());
    }
};

template <class T>
class [[nodiscard]] result {
  public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const error& err() const& { return std::get<1>(v_); }
    error&& err() && { return std::get<1>(std::move(v_)); }

  private:
    std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
  public:
    result() = default;
    result(error e) : err_(std::move(e)), failed_(true) {}  // NOLINT

    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const error& err() const& { return err_; }
    error&& err() && { return std::move(err_); }

  private:
    error err_;
    bool failed_ = false;
};

}  // namespace preforkd
