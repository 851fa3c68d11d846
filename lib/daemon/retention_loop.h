// Retention (docs/config.md, `retention`): finished touchpoints older than
// the retention are deleted with their history, in a pass over the
// touchpoints table every 10 minutes, in steps of 2,000 rows with a
// 10 ms pause between them (a few ms of work each; the first steps read
// which touchpoints are still queued, 100,000 messages each), so the loop
// never stalls on it. A reload may turn retention on or off, or change it.
//
// Not thread-safe: the daemon's loop only.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/clock.h"
#include "store/retention_store.h"

namespace tp {

class RetentionLoop {
 public:
  static constexpr std::chrono::minutes kInterval{10};
  static constexpr std::int64_t kSpan = 2000;
  static constexpr std::chrono::milliseconds kPause{10};

  struct Hooks {
    // After each step, how many touchpoints it deleted.
    std::function<void(std::int64_t deleted)> deleted;
    // A step failed (the pass starts again in kInterval): so that an
    // Unavailable store is noticed by the daemon's watch of it.
    std::function<void(const Status& failed)> failed;
  };
  RetentionLoop(boost::asio::io_context& io, RetentionStore& store, const Clock& clock,
                const RulesInForce& rules, Hooks hooks);

  // The first step now, then on.
  void Start() { Schedule(std::chrono::seconds(0)); }
  void Stop();

 private:
  void Schedule(std::chrono::steady_clock::duration delay);
  // One step of a pass.
  void Step();

  boost::asio::steady_timer timer_;
  RetentionStore& store_;
  const Clock& clock_;
  const RulesInForce& rules_;
  Hooks hooks_;
  std::int64_t cursor_ = 0;
  Instant cutoff_;  // of the pass under way
  std::int64_t deleted_in_pass_ = 0;
  bool stopped_ = false;
};

}  // namespace tp
