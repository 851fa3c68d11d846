#include "daemon/replanner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "core/text.h"
#include "planner/replan.h"

namespace tp {
namespace {

// A step's work: short enough for requests to wait at most about this long
// behind one, long enough that a commit per step costs little.
constexpr auto kStepBudget = std::chrono::milliseconds(20);
// After a failed step (the disk is full, say), the next try.
constexpr std::chrono::milliseconds kRetryAfter{1000};
// After a step that ended at a lock held elsewhere (ReplanStep::busy),
// doubled after each one in a row that re-planned no one, up to
// kBusyRetryMax.
constexpr std::chrono::milliseconds kBusyRetry{20};
constexpr std::chrono::milliseconds kBusyRetryMax{320};

}  // namespace

Replanner::Replanner(boost::asio::io_context& io, ReplanStore& store, const Clock& clock,
                     OnStep on_step, MayWrite may_write, OnFailure on_failure, OnRun on_run)
    : io_(io),
      retry_(io),
      follow_(io),
      check_(io),
      store_(store),
      clock_(clock),
      on_step_(std::move(on_step)),
      may_write_(std::move(may_write)),
      on_failure_(std::move(on_failure)),
      on_run_(std::move(on_run)) {}

// The thread first (it ends after the step under way, whose outcome is
// then dropped).
Replanner::~Replanner() { thread_.reset(); }

Status Replanner::UseThread(const RulesInForce& rules, const OpenStore& open) {
  auto thread = SessionThread<ReplanStore>::Open(rules, open);
  if (!thread.ok()) return thread.status();
  thread_ = std::move(*thread);
  return Status::Ok();
}

void Replanner::FollowOthers(std::chrono::milliseconds every) { follow_every_ = every; }

void Replanner::Start(const std::string& fingerprint) {
  fingerprint_ = fingerprint;
  if (follow_every_.count() > 0) Follow();
  Check();
}

void Replanner::Check() {
  // A reload's Run() came first: its record (or the restart it asked of
  // its first step) sweeps from the first pending touchpoint, and holds
  // firing by how far it got; nothing is left to read or resume.
  if (running_) {
    known_ = true;
    checks_failed_ = 0;
    return;
  }
  auto state = store_.Planning();
  Status s = state.status();
  if (state.ok()) {
    // Known from here, whatever the branches below record: a re-plan
    // (Run()) holds firing by its own covered_.
    known_ = true;
    progress_.failures = 0;
    progress_.last_error.clear();
  }
  if (state.ok() && state->fingerprint.empty()) {
    // A database from before schema 8: planned by these rules, as far as
    // anyone can tell.
    s = store_.SetPlanning(fingerprint_, false);
  } else if (state.ok() && state->fingerprint != fingerprint_) {
    // Recorded before any purchase is taken by the new rules; if that
    // fails (another daemon's step holds the sweep too long), by the first
    // step, tried again each second: firing waits for it meanwhile.
    const bool recorded = store_.SetPlanning(fingerprint_, true).ok();
    Run("the config's planning rules are not those the pending touchpoints were planned by "
        "(it changed while touchpointd was stopped)",
        fingerprint_, !recorded);
  } else if (state.ok() && state->replanning) {
    Run("resuming the re-plan a stop interrupted", fingerprint_);
  }
  if (s.ok()) {
    if (checks_failed_ > 0) {
      spdlog::info("planning state read after {} failed tries", checks_failed_);
      checks_failed_ = 0;
      // Firing, held meanwhile, goes on (a Run() above told it already).
      if (!running_) on_step_(ReplanCounts{}, true);
    }
    return;
  }
  // Unknown, the rules the pending touchpoints were planned by may not be
  // these: firing waits (CoveredUntil()) until a read tells, tried again
  // each second. At the first failure, then once a minute.
  known_ = false;
  if (checks_failed_++ % 60 == 0) {
    spdlog::error(
        "planning state: {}; due touchpoints wait until it is read, tried again every second",
        s.message());
  }
  progress_.failures = checks_failed_;
  progress_.last_error = s.message();
  on_failure_(s);
  check_.expires_after(kRetryAfter);
  check_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) Check();
  });
}

void Replanner::Stop() {
  stopped_ = true;
  retry_.cancel();
  follow_.cancel();
  check_.cancel();
}

void Replanner::NoteOtherRulesOnceMore() {
  if (on_other_rules_) (void)store_.NotePlanningByOtherRules(fingerprint_);
}

void Replanner::Follow() {
  follow_.expires_after(follow_every_);
  follow_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    if (!running_) {
      // A failed read is tried at the next look (the store's watch tells
      // of an outage).
      auto state = store_.Planning();
      if (state.ok()) FollowState(*state);
    }
    Follow();
  });
}

void Replanner::FollowState(const PlanningState& state) {
  if (state.fingerprint.empty()) return;
  if (state.fingerprint != fingerprint_) {
    // Recorded by another daemon's reload or start: the purchases taken
    // here are planned by rules that are no longer the recorded ones.
    if (!on_other_rules_) {
      spdlog::warn(
          "another daemon recorded other planning rules: the purchases taken here are planned by "
          "this daemon's until it is reloaded or restarted to them, and re-planned once no daemon "
          "on other rules is left");
      on_other_rules_ = true;
    }
    // A failure: the next look says it again.
    (void)store_.NotePlanningByOtherRules(fingerprint_);
    return;
  }
  on_other_rules_ = false;
  if (state.replanning) {
    Run("another daemon started a re-plan to these rules", fingerprint_);
    return;
  }
  if (state.other_rules_seen && *state.other_rules_seen >= kOtherRulesGone) {
    auto started = store_.ReplanOnceOtherRulesGone(fingerprint_, kOtherRulesGone);
    if (started.ok() && *started) {
      Run("purchases were planned by a daemon on other rules, and no such daemon is left",
          fingerprint_);
    }
  }
}

void Replanner::Wake() {
  if (!running_ || stopped_ || !posted_) return;
  // A retry waiting: its handler, cancelled, clears posted_ before this
  // runs (unless a step was posted meanwhile).
  if (retry_.cancel() > 0) {
    boost::asio::post(io_, [this] {
      if (!posted_) Step();
    });
  }
}

void Replanner::Run(std::string why, std::string fingerprint, bool restart) {
  stopped_ = false;
  fingerprint_ = std::move(fingerprint);
  restart_ = restart;
  // The run holds firing from here, whatever a start could not read.
  known_ = true;
  checks_failed_ = 0;
  check_.cancel();
  if (running_) {
    spdlog::info("re-planning pending touchpoints again from the start: {}", why);
  } else {
    spdlog::info("re-planning pending touchpoints in the background: {}", why);
  }
  // A restart from the start (SetPlanning) covers nothing yet.
  covered_ = Instant::min();
  ++run_;
  running_ = true;
  told_ = false;
  busy_in_a_row_ = 0;
  progress_ = Progress{true, clock_.Now(), std::nullopt, 0, {}, 0, {}};
  started_ = std::chrono::steady_clock::now();
  on_run_();
  if (!posted_) {
    posted_ = true;
    boost::asio::post(io_, [this] { Step(); });
  } else {
    Wake();  // not after a busy step's or a failed one's wait
  }
}

void Replanner::Retry(std::chrono::milliseconds after) {
  posted_ = true;
  retry_.expires_after(after);
  retry_.async_wait([this](const boost::system::error_code& ec) {
    posted_ = false;
    if (!ec) Step();
  });
}

void Replanner::Step() {
  posted_ = false;
  if (stopped_ || !running_) return;
  if (!may_write_()) return Retry(kRetryAfter);
  const auto began = std::chrono::steady_clock::now();
  auto step = [restart = restart_, fingerprint = fingerprint_,
               now = clock_.Now()](ReplanStore& store) -> Stepped {
    if (restart) {
      if (Status s = store.SetPlanning(fingerprint, true); !s.ok()) return {s, false};
    }
    return {store.ReplanSome(ReplanPurchase, fingerprint,
                             std::chrono::steady_clock::now() + kStepBudget, now),
            restart};
  };
  if (!thread_) return Finish(began, run_, step(store_));
  posted_ = true;  // until its outcome is back
  thread_->Post([this, &io = io_, alive = std::weak_ptr<char>(alive_), began, run = run_,
                 step = std::move(step)](ReplanStore& store) {
    Stepped stepped = step(store);
    boost::asio::post(io, [this, alive, began, run, stepped = std::move(stepped)]() mutable {
      if (alive.expired()) return;
      posted_ = false;
      Finish(began, run, std::move(stepped));
    });
  });
}

void Replanner::Finish(std::chrono::steady_clock::time_point began, std::uint64_t run,
                       Stepped stepped) {
  if (stepped.recorded) {
    // A step of an earlier run that recorded its re-plan may have done so
    // after a later Run()'s record (a reload's, on the loop), writing the
    // earlier rules over it: the current run records its own again.
    restart_ = run != run_;
  }
  if (stopped_ || !running_) return;
  StatusOr<ReplanStep>& step = stepped.step;
  if (run != run_) {
    // Run() started the sweep again meanwhile: what this step wrote is
    // written (counted), but how far it got is the old run's.
    if (step.ok() && step->buyers > 0) on_step_(step->counts, false);
    if (!posted_) {
      posted_ = true;
      boost::asio::post(io_, [this] { Step(); });
    }
    return;
  }
  int& failures = progress_.failures;
  if (step.ok() && failures > 0) {
    spdlog::info("re-planning goes on after {} failed tries", failures);
    failures = 0;
    progress_.last_error.clear();
  }
  if (!step.ok()) {
    // At the first failure, then once a minute while they last (a full
    // disk can last hours): firing waits meanwhile.
    if (failures++ % 60 == 0) {
      spdlog::error(
          "re-planning: {}; trying again every second ({} failed in a row); due touchpoints "
          "wait for it",
          step.status().message(), failures);
    }
    progress_.last_error = step.status().message();
    on_failure_(step.status());
    return Retry(kRetryAfter);
  }
  spdlog::debug("re-plan step: {} buyers in {} ms", step->buyers,
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - began)
                    .count());
  // A busy step that changed nothing tells no one (the daemon re-arms
  // firing after each step it is told of), unless it is the first of the
  // run (the daemon's gauge says a re-plan runs).
  const bool changed = !told_ || !step->busy || step->buyers > 0 || step->covered != covered_;
  told_ = told_ || changed;
  busy_in_a_row_ = step->busy && step->buyers == 0 ? busy_in_a_row_ + 1 : 0;
  covered_ = step->covered;
  progress_.buyers += step->buyers;
  progress_.counts.Add(step->counts);
  if (step->done) {
    running_ = false;
    progress_.running = false;
    progress_.finished_at = clock_.Now();
    const ReplanCounts& c = progress_.counts;
    if (step->superseded) {
      spdlog::warn(
          "re-planning stopped after {}: another daemon's reload started a re-plan to other "
          "rules; this daemon fires and plans by its own until it is reloaded to them too",
          Plural(progress_.buyers, "buyer"));
    } else {
      spdlog::info(
          "re-planned pending touchpoints of {} in {:.1f} s: {} moved, {} added, {} cancelled "
          "(rules changed), {} otherwise updated",
          Plural(progress_.buyers, "buyer"),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(),
          c.moved, c.added, c.cancelled, c.updated);
    }
  }
  if (changed) on_step_(step->counts, step->done);
  if (step->done || posted_) return;
  if (step->busy) {
    const int doublings = std::clamp(busy_in_a_row_ - 1, 0, 4);
    return Retry(std::min(kBusyRetryMax, kBusyRetry * (1 << doublings)));
  }
  posted_ = true;
  boost::asio::post(io_, [this] { Step(); });
}

}  // namespace tp
