// Work that would hold the daemon's loop too long (parsing a request body
// of megabytes takes hundreds of milliseconds), run on a thread of its
// own, one job at a time in the order given, and followed on the loop.
//
// Run(), Stop() and the destructor on the loop only. While a job is away,
// the loop does not run out of work: a stopping daemon answers the request
// before it exits. The destructor waits for the jobs handed over; what
// they would have done next on the loop is then dropped.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "core/job_thread.h"

namespace tp {

class OffLoop {
 public:
  explicit OffLoop(boost::asio::io_context& io) : io_(io) {}
  OffLoop(const OffLoop&) = delete;
  OffLoop& operator=(const OffLoop&) = delete;

  // `work` on the thread, then `then` on the loop (unless *this is gone).
  void Run(std::function<void()> work, std::function<void()> then);
  // The daemon is stopping: the jobs not begun skip their `work` (their
  // `then` still runs, and must not count on it).
  void Stop() { stopping_ = true; }

 private:
  boost::asio::io_context& io_;
  std::size_t away_ = 0;  // jobs handed over whose `then` has not run
  std::atomic<bool> stopping_{false};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  // Expires with *this: what the thread posts to the loop checks it.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  JobThread thread_;  // last: joined before the rest goes
};

}  // namespace tp
