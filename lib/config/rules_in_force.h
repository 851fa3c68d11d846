// The rules in force, held in one place. Each process has one owner (the
// daemon, simulate, a test); every component that plans, routes, fires or
// answers by the rules takes a const reference to it and reads it at each
// use, so there is no copy to keep in step. One writer swaps them (the
// daemon's Reloader, at a SIGHUP); each swap bumps generation(), which a
// component that derives something from the rules (the store's routing
// table) compares to know when to derive it again.
//
// Not thread-safe: read and swapped on the thread that owns it (the
// daemon's event loop). What must outlive a swap takes shared().
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "config/rules.h"

namespace tp {

class RulesInForce {
 public:
  explicit RulesInForce(std::shared_ptr<const Rules> rules) : rules_(std::move(rules)) {}
  RulesInForce(const RulesInForce&) = delete;
  RulesInForce& operator=(const RulesInForce&) = delete;

  const Rules& operator*() const { return *rules_; }
  const Rules* operator->() const { return rules_.get(); }
  const std::shared_ptr<const Rules>& shared() const { return rules_; }
  std::uint64_t generation() const { return generation_; }

  // From now on every reader sees `next`.
  void Swap(std::shared_ptr<const Rules> next) {
    rules_ = std::move(next);
    ++generation_;
  }

 private:
  std::shared_ptr<const Rules> rules_;
  std::uint64_t generation_ = 0;
};

}  // namespace tp
