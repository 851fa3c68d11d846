// Errors as values: every component boundary returns Status or StatusOr<T>;
// exceptions never cross one (see STYLE.md).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace tp {

class [[nodiscard]] Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  // Something the call needs is short for now (the disk is full): the same
  // call may work later, so an API answers 503 with Retry-After, not 500.
  static Status Unavailable(std::string message) {
    Status s(std::move(message));
    s.unavailable_ = true;
    return s;
  }

  bool ok() const { return !message_.has_value(); }
  bool unavailable() const { return unavailable_; }
  // Empty when ok().
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

 private:
  Status() = default;
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
  bool unavailable_ = false;
};

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)), status_(Status::Ok()) {}  // NOLINT: implicit
  StatusOr(Status status) : status_(std::move(status)) {}                 // NOLINT: implicit

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tp
