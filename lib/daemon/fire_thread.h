// Firing on a thread of its own, for a store other daemons share
// (PostgreSQL): a FireLoop on an io_context of its own, over a store
// session, rules and Scheduler of its own, as a second daemon in the same
// process would fire. The daemon's loop keeps the requests, the leases and
// acks and the deliveries, so a firing pass no longer holds them up, and
// the database works on both at once (docs/benchmarks.md, "On
// PostgreSQL").
//
// Across the two threads:
//  - what firing needs from the loop is a snapshot the loop takes at each
//    Rearm(), Pause() and Stop(): whether firing may go on (not while
//    stopping or short of space), how far a re-plan has got
//    (Replanner::CoveredUntil()), and the rules in force, which the fire
//    thread swaps into its own RulesInForce before its next step;
//  - what the loop needs from firing is posted to it: `storage_full`,
//    `fired`, and what the scheduler decided, told to the loop's
//    SchedulerObserver once a pass.
// Every change the loop makes to those (a reload, a re-plan's step, the
// store short of space or back) is followed by a Rearm() or a Pause(),
// as it is for a FireLoop on the loop, so the snapshot is never stale
// for longer than a post and the pass in progress (a pass under way at a
// reload finishes by the rules it began with, as another daemon's
// would). What is posted to the loop does nothing once *this is gone.
//
// Start(), Rearm(), Pause() and Stop() are called on the loop. Stop()
// waits for the pass in progress, then joins the thread.
#pragma once

#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "config/rules_in_force.h"
#include "core/clock.h"
#include "core/status.h"
#include "daemon/fire_loop.h"
#include "daemon/firing.h"
#include "daemon/observer_log.h"
#include "scheduler/scheduler.h"
#include "scheduler/store.h"

namespace tp {

class FireThread final : public Firing {
 public:
  struct Hooks {
    // Asked on the loop at each Rearm(): whether firing may go on.
    std::function<bool()> may_fire;
    // Asked on the loop at each Rearm(): how far the re-plan under way has
    // got (Replanner::CoveredUntil()).
    std::function<Instant()> covered_until;
    // Posted to the loop: a write failed for want of space (or the
    // server); touchpoints fired.
    std::function<void()> storage_full;
    std::function<void()> fired;
    // FireLoop::Hooks::poll.
    std::optional<Millis> poll = std::nullopt;
  };
  // The fire thread's own store, routing by `rules` (the thread's own).
  using OpenStore =
      std::function<StatusOr<std::unique_ptr<ScheduleStore>>(const RulesInForce& rules)>;

  // Opens the thread's store; the thread starts at Start(). `loop_rules`
  // (read on the loop only), `clock` and `observer` (told on the loop; may
  // be null) outlive *this.
  static StatusOr<std::unique_ptr<FireThread>> Open(boost::asio::io_context& loop,
                                                    const RulesInForce& loop_rules,
                                                    const Clock& clock, SchedulerObserver* observer,
                                                    Hooks hooks, const OpenStore& open);
  ~FireThread() override;
  FireThread(const FireThread&) = delete;
  FireThread& operator=(const FireThread&) = delete;

  // Firing (daemon/firing.h), on the loop.
  void Start() override;
  void Rearm(bool force) override;
  void Pause() override;
  void Stop() override;
  // As the fire thread's FireLoop last told it.
  FiringHealth Health() const override;
  std::int64_t HeldForOrder() const override { return store_->HeldForOrder(); }

 private:
  // What firing reads of the loop's state, as of the last Publish().
  struct Snapshot {
    bool may_fire = false;
    Instant covered_until = Instant::max();
    std::shared_ptr<const Rules> rules;
  };
  FireThread(boost::asio::io_context& loop, const RulesInForce& loop_rules,
             SchedulerObserver* observer, Hooks hooks);
  // On the loop: takes the snapshot.
  void Publish(bool may_fire);
  // On the fire thread: the snapshot, with its rules swapped in.
  Snapshot Read();
  // On the fire thread, after a pass: what the scheduler decided, posted
  // to the loop's observer.
  void Report();
  // Runs `fn` on the loop, unless *this is gone by then.
  void PostToLoop(std::function<void()> fn);

  boost::asio::io_context& loop_;
  const RulesInForce& loop_rules_;
  SchedulerObserver* observer_;
  Hooks hooks_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  RulesInForce rules_;  // the fire thread's
  std::unique_ptr<ScheduleStore> store_;
  std::unique_ptr<ObserverLog> recorder_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<FireLoop> fire_;
  mutable std::mutex mutex_;
  Snapshot shared_;      // guarded by mutex_
  FiringHealth health_;  // guarded by mutex_
  std::thread thread_;
  bool stopped_ = false;  // on the loop
  // Expires with *this: what the thread posted to the loop checks it (on
  // the loop, where *this is destroyed).
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace tp
