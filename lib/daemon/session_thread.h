// A thread with a store session of its own, for the daemon's work whose
// statements can take long enough on a shared server to hold the loop up
// (PostgreSQL: the ingest groups, daemon/ingest_batcher.h, and the
// re-plan's steps, daemon/replanner.h). Jobs posted to it run there in
// order, each under the rules in force on the loop when it was posted,
// which the session reads through a RulesInForce of the thread's own.
//
// Thread-safety: Post() from the loop's thread, which swaps the loop's
// rules; the jobs, and the store, on the thread. Destroying it waits for
// the jobs posted.
#pragma once

#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <memory>
#include <thread>

#include "config/rules_in_force.h"
#include "core/status.h"

namespace tp {

template <typename StoreT>
class SessionThread {
 public:
  // The thread's store, reading `own` (the thread's rules).
  using OpenStore = std::function<StatusOr<std::unique_ptr<StoreT>>(const RulesInForce& own)>;

  // Opens the store (on the caller's thread), then starts the thread.
  // `loop_rules` outlive *this.
  static StatusOr<std::unique_ptr<SessionThread>> Open(const RulesInForce& loop_rules,
                                                       const OpenStore& open) {
    std::unique_ptr<SessionThread> self(new SessionThread(loop_rules));
    auto store = open(self->rules_);
    if (!store.ok()) return store.status();
    self->store_ = std::move(*store);
    self->thread_ = std::thread([t = self.get()] { t->io_.run(); });
    return self;
  }
  ~SessionThread() {
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }
  SessionThread(const SessionThread&) = delete;
  SessionThread& operator=(const SessionThread&) = delete;

  // Runs job(store) on the thread under the rules in force on the loop now.
  void Post(std::function<void(StoreT&)> job) {
    boost::asio::post(io_, [this, rules = loop_rules_.shared(), job = std::move(job)]() mutable {
      if (rules != rules_.shared()) rules_.Swap(std::move(rules));
      job(*store_);
    });
  }

  // For what is built over the store before the first job, and used on the
  // thread only (the ingest writer).
  StoreT& store() { return *store_; }
  const RulesInForce& rules() const { return rules_; }

 private:
  explicit SessionThread(const RulesInForce& loop_rules)
      : loop_rules_(loop_rules), work_(io_.get_executor()), rules_(loop_rules.shared()) {}

  const RulesInForce& loop_rules_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  RulesInForce rules_;  // the thread's
  std::unique_ptr<StoreT> store_;
  std::thread thread_;
};

}  // namespace tp
