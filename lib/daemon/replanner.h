// Re-plans pending touchpoints after the planning rules change (a reload,
// or a start on rules other than those the database was planned by), in
// steps of about 20 ms posted to the loop (or, on PostgreSQL, handed to a
// thread from it), so that a reload never holds it: requests, fires and
// the watchdog get their turn between steps, however many touchpoints are
// pending.
//
// The sweep goes in firing order (ReplanStore::ReplanSome), so it passes
// what is due now in its first step and stays ahead of the clock; until it
// has passed a touchpoint, that touchpoint waits (Covers()), so nothing
// fires by rules that were replaced. How far it got is in the database: a
// crash or a stop mid-way resumes at the next start.
//
// On PostgreSQL the steps run on a thread and session of their own
// (UseThread()): a step is about 20 ms of work, but its statements can
// take longer on a busy server (autovacuum over a large table, other
// daemons' work), and the loop does not wait for them.
//
// Not thread-safe: the daemon's loop only. `io`, `store` and `clock` must
// outlive *this.
#pragma once

#include <utility>
// (Boost 1.74's Asio needs <utility> first under C++20.)

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "daemon/session_thread.h"
#include "store/replan_store.h"

namespace tp {

class Replanner {
 public:
  // After each step, with what it changed: the daemon re-arms its timer
  // and counts metrics. After the last, `done` is true.
  using OnStep = std::function<void(const ReplanCounts& step, bool done)>;
  // Whether a step may write now: not while storage is short (the room
  // left is for leases and acks), nor while the ingest groups a reload
  // handed over are still being written. Asked before each step; a held
  // step is tried again a second later, or at Wake().
  using MayWrite = std::function<bool()>;
  // After a failed step, with why (the daemon checks its space when the
  // store says it is full).
  using OnFailure = std::function<void(const Status&)>;
  // At each Run(), before its first step: the daemon sets its gauge and
  // re-arms firing, which then waits for the re-plan (Covers()).
  using OnRun = std::function<void()>;

  // Failed steps in a row after which /healthz says degraded: firing waits
  // for the re-plan, so a re-plan that cannot go on holds every fire.
  static constexpr int kFailuresDegrade = 10;

  Replanner(
      boost::asio::io_context& io, ReplanStore& store, const Clock& clock, OnStep on_step,
      MayWrite may_write, OnFailure on_failure, OnRun on_run = [] {});
  ~Replanner();
  Replanner(const Replanner&) = delete;
  Replanner& operator=(const Replanner&) = delete;

  // Before Start(): from now on the steps (and the record of a restart
  // asked of Run()) run on a thread over the store `open` gives, under the
  // rules `rules` (the loop's, which outlive *this) had when each was
  // handed over; the store given to the constructor keeps the rest, on the
  // loop (Planning() at a start and for FollowOthers()). A step's outcome
  // comes back to the loop; one under way when Run() starts the sweep
  // again counts what it wrote, and is not taken for how far the new run
  // got.
  using OpenStore = SessionThread<ReplanStore>::OpenStore;
  Status UseThread(const RulesInForce& rules, const OpenStore& open);

  // On a store other daemons share (PostgreSQL), before Start(): every
  // `every` while no re-plan runs here, looks whether another daemon's
  // reload to the same rules has started the shared sweep again (its
  // Planning() says a re-plan to this daemon's fingerprint is under way)
  // and if so steps through it too, firing waiting for it as at a reload
  // of its own. Without it, a daemon whose re-plan had finished before
  // that reload would fire the purchases the later daemon took by the old
  // rules before the sweep reached them.
  //
  // It also tells the others while its rules are not the recorded ones
  // (another daemon was reloaded or started with others): the purchases it
  // takes meanwhile are planned by its rules. Once no daemon has told so
  // for kOtherRulesGone (each was stopped, or reloaded or restarted to the
  // recorded rules), one daemon on the recorded rules starts the sweep
  // again, which the others follow: those purchases are re-planned.
  // Without it, a daemon restarted to the recorded rules found them
  // recorded, and the purchases it had taken by its old rules, behind the
  // sweep or after it, kept them.
  void FollowOthers(std::chrono::milliseconds every);
  static constexpr Millis kOtherRulesGone{5000};
  // At start: the planning state the store keeps against `fingerprint`,
  // the config's PlanningFingerprint(). Rules other than those the pending
  // touchpoints were planned by (the config changed while the daemon was
  // stopped) are re-planned to; a re-plan a stop or a crash interrupted
  // resumes. A state that cannot be read (the store is away) is read
  // again each second, and until it is, nothing is covered: firing waits,
  // for it cannot tell which rules the pending touchpoints were planned by.
  void Start(const std::string& fingerprint);
  // Starts stepping through the re-plan to `fingerprint` (the
  // PlanningFingerprint() of the rules now in force) the store has under
  // way (its Planning() says where); `why` is for the log. A re-plan
  // already being stepped through just goes on: the store's position
  // decides.
  //
  // With `restart` (a reload while ingest groups by the old rules were
  // still being written, daemon/ingest_batcher.h): the first step that
  // may_write lets through first records the re-plan to `fingerprint`
  // again, which starts the sweep, shared with other daemons, from the
  // first pending touchpoint: a daemon already stepping through it may
  // have passed those groups' touchpoints before they were committed.
  void Run(std::string why, std::string fingerprint, bool restart = false);
  // Stops after the step in progress (the daemon is stopping); the next
  // start resumes.
  void Stop();
  // After a stop, once the purchases the daemon was writing are written:
  // if its last look found other rules recorded than its own, says so
  // once more, so that the others re-plan kOtherRulesGone after its last
  // purchase by them, not after its last look (the writes queued at the
  // stop may take seconds, each waiting for its buyers' turns).
  void NoteOtherRulesOnceMore();
  // What held a step may have ended: the step goes now, not a second
  // later.
  void Wake();

  bool running() const { return running_; }
  // How far the re-plan has got: every touchpoint due before this has been
  // re-planned (Instant::max() when no re-plan runs).
  Instant CoveredUntil() const {
    if (!known_) return Instant::min();
    return running_ ? covered_ : Instant::max();
  }
  // Whether every touchpoint due by `now`, and for a second after it, has
  // been re-planned (always, when no re-plan runs). The second covers the
  // time the scheduler's pass takes: it reads the clock again.
  bool Covers(Instant now) const { return Covers(CoveredUntil(), now); }
  // The same from a CoveredUntil() read earlier (by a thread of its own).
  static bool Covers(Instant covered_until, Instant now) {
    return covered_until > now + std::chrono::seconds(1);
  }

  // For /healthz.
  struct Progress {
    bool running = false;
    std::optional<Instant> started_at, finished_at;
    std::int64_t buyers = 0;  // re-planned so far (this run)
    ReplanCounts counts;
    int failures = 0;        // failed steps in a row
    std::string last_error;  // of the last failed step, while failing
  };
  const Progress& progress() const { return progress_; }

 private:
  // A step's outcome, and whether it recorded the restart asked of Run().
  struct Stepped {
    StatusOr<ReplanStep> step;
    bool recorded = false;
  };

  // Hands a step to the store (at once on the loop, or to the thread).
  void Step();
  // On the loop, with the outcome of a step handed over at `began` in run
  // `run`.
  void Finish(std::chrono::steady_clock::time_point began, std::uint64_t run, Stepped stepped);
  // Steps again `after` from now (or at Wake()).
  void Retry(std::chrono::milliseconds after);
  // FollowOthers()' next look, and what the planning state it read calls
  // for.
  void Follow();
  void FollowState(const PlanningState& state);
  // Start()'s read of the planning state, and what it calls for; again a
  // second later while it fails.
  void Check();

  boost::asio::io_context& io_;
  boost::asio::steady_timer retry_;
  boost::asio::steady_timer follow_;
  boost::asio::steady_timer check_;            // Check() again
  std::chrono::milliseconds follow_every_{0};  // 0: not following
  ReplanStore& store_;
  const Clock& clock_;
  OnStep on_step_;
  MayWrite may_write_;
  OnFailure on_failure_;
  OnRun on_run_;
  bool running_ = false;
  bool on_other_rules_ = false;  // the last look found other rules recorded
  bool known_ = true;            // the planning state read (Check())
  int checks_failed_ = 0;        // Check()s in a row that could not read it
  bool posted_ = false;          // a step posted, waiting to be retried, or on the thread
  std::uint64_t run_ = 0;        // Run() calls so far
  bool stopped_ = false;
  std::string fingerprint_;  // of the rules in force (Start(), Run())
  bool restart_ = false;     // see Run()
  int busy_in_a_row_ = 0;    // busy steps in a row that re-planned no one
  bool told_ = false;        // on_step_ called in this run
  Instant covered_ = Instant::min();
  std::chrono::steady_clock::time_point started_;
  Progress progress_;
  // The thread's outcomes are dropped once *this is gone.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  std::unique_ptr<SessionThread<ReplanStore>> thread_;
};

}  // namespace tp
