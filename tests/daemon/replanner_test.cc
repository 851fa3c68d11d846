// Replanner over a store that records what it is asked: a step held by
// may_write goes on at Wake(), not a second later; a restart asked of
// Run() is recorded by the first step let through, before it steps; a busy
// step is tried again soon; a daemon whose re-plan had finished follows
// another daemon's restart of the sweep to its rules; on a thread, a step
// does not hold the loop, and one under way when the sweep starts again is
// not taken for the new run.
#include "daemon/replanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "due_now.h"

namespace tp {
namespace {

// A re-plan under way to "fp1" that ends at its first step.
class RecordingStore final : public ReplanStore {
 public:
  StatusOr<PlanningState> Planning() override {
    if (failed_reads > 0) {
      --failed_reads;
      return Status::Unavailable("connection refused");
    }
    return PlanningState{fingerprint, replanning, other_rules_seen};
  }
  Status NotePlanningByOtherRules(std::string_view fp) override {
    EXPECT_NE(fp, fingerprint);
    ++notes;
    return Status::Ok();
  }
  StatusOr<bool> ReplanOnceOtherRulesGone(std::string_view fp, Millis gone) override {
    asked.push_back("replan once others gone");
    if (fp != fingerprint || !other_rules_seen || *other_rules_seen < gone) return false;
    other_rules_seen.reset();
    replanning = true;
    return true;
  }
  Status SetPlanning(std::string_view fp, bool replan) override {
    asked.push_back("set " + std::string(fp));
    if (failed_sets > 0) {
      --failed_sets;
      return Status::Unavailable("canceling statement due to lock timeout");
    }
    fingerprint = fp;
    replanning = replan;
    return Status::Ok();
  }
  StatusOr<ReplanStep> ReplanSome(const PurchaseReplanner& /*replan*/, std::string_view /*fp*/,
                                  std::chrono::steady_clock::time_point /*deadline*/,
                                  Instant /*now*/) override {
    asked.push_back("step");
    stepped_at.push_back(std::chrono::steady_clock::now());
    if (busy_steps > 0) {
      --busy_steps;
      ReplanStep busy{{}, 0, busy_covered, false};
      busy.busy = true;
      return busy;
    }
    replanning = false;
    return ReplanStep{{}, 0, Instant::max(), true};
  }

  std::string fingerprint = "fp1";
  bool replanning = true;
  std::optional<Millis> other_rules_seen;
  int notes = 0;  // NotePlanningByOtherRules() calls
  std::vector<std::string> asked;
  std::vector<std::chrono::steady_clock::time_point> stepped_at;
  // Steps that end busy first, covered to busy_covered (another daemon's
  // step under way, the sweep where that daemon's steps left it).
  int busy_steps = 0;
  Instant busy_covered;
  int failed_sets = 0;   // SetPlanning() calls that fail first
  int failed_reads = 0;  // Planning() calls that fail first
};

// The thread's store: each step waits until Open() (or 10 s), then is done
// after `busy_steps` busy ones; it notes the rules each step ran under.
class GatedStore final : public ReplanStore {
 public:
  explicit GatedStore(const RulesInForce& rules) : rules_(rules) {}

  StatusOr<PlanningState> Planning() override { return PlanningState{"fp1", true, {}}; }
  // Waits as ReplanSome() does when `gate_records`; notes the fingerprint.
  Status SetPlanning(std::string_view fp, bool /*replan*/) override {
    std::unique_lock lock(mutex_);
    if (gate_records) {
      ++entered_;
      changed_.notify_all();
      changed_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; });
    }
    recorded_.emplace_back(fp);
    return Status::Ok();
  }
  StatusOr<ReplanStep> ReplanSome(const PurchaseReplanner& /*replan*/, std::string_view /*fp*/,
                                  std::chrono::steady_clock::time_point /*deadline*/,
                                  Instant /*now*/) override {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; });
    ++steps_;
    ran_under_.push_back(rules_.shared().get());
    ReplanStep step{{}, 1, Instant::max(), true};
    step.counts.moved = 1;
    return step;
  }

  void Open() {
    const std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Whether a step has begun (within 10 s).
  bool Entered() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ > 0; });
  }
  int steps() {
    const std::lock_guard lock(mutex_);
    return steps_;
  }
  std::vector<const Rules*> ran_under() {
    const std::lock_guard lock(mutex_);
    return ran_under_;
  }
  std::vector<std::string> recorded() {
    const std::lock_guard lock(mutex_);
    return recorded_;
  }
  bool gate_records = false;  // set before the first step

 private:
  const RulesInForce& rules_;  // the thread's
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  int entered_ = 0, steps_ = 0;
  std::vector<const Rules*> ran_under_;
  std::vector<std::string> recorded_;  // SetPlanning()'s fingerprints
};

class ReplannerTest : public ::testing::Test {
 protected:
  ReplannerTest()
      : replanner_(
            loop_, store_, clock_,
            [this](const ReplanCounts&, bool done) {
              done_ = done;
              ++told_;
              told_states_.push_back({done, replanner_.running(), replanner_.Covers(clock_.Now())});
            },
            [this] { return may_write_; }, [](const Status&) {},
            [this] { runs_.push_back(store_.asked.size()); }) {}

  // Steps on a thread over a GatedStore (returned, owned by the thread).
  GatedStore* UseThread() {
    GatedStore* gated = nullptr;
    const Status s = replanner_.UseThread(loop_rules_, [&](const RulesInForce& own) {
      auto store = std::make_unique<GatedStore>(own);
      gated = store.get();
      return StatusOr<std::unique_ptr<ReplanStore>>(std::move(store));
    });
    EXPECT_TRUE(s.ok()) << s.message();
    return gated;
  }

  // Runs the loop for `d`.
  void RunFor(std::chrono::milliseconds d) {
    testing::RunLoopUntil(loop_, [end = std::chrono::steady_clock::now() + d] {
      return std::chrono::steady_clock::now() >= end;
    });
  }

  boost::asio::io_context loop_;
  RecordingStore store_;
  SystemClock clock_;
  bool may_write_ = false;
  bool done_ = false;
  int told_ = 0;  // steps the daemon was told of
  // Each Run() the daemon was told of: how many calls the store had had.
  std::vector<std::size_t> runs_;
  // At each step told of: done, running(), Covers(now).
  struct Told {
    bool done, running, covers;
    bool operator==(const Told&) const = default;
  };
  std::vector<Told> told_states_;
  RulesInForce loop_rules_{std::make_shared<const Rules>()};
  Replanner replanner_;
};

// Held steps are tried again a second later; Wake() lets one go at once.
TEST_F(ReplannerTest, AHeldStepGoesOnAtWake) {
  replanner_.Run("a test", "fp1");
  RunFor(std::chrono::milliseconds(50));
  EXPECT_TRUE(store_.asked.empty());
  EXPECT_TRUE(replanner_.running());
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  may_write_ = true;
  const auto woken = std::chrono::steady_clock::now();
  replanner_.Wake();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_LT(std::chrono::steady_clock::now() - woken, std::chrono::milliseconds(500));
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("step"));
  EXPECT_TRUE(done_);
  EXPECT_FALSE(replanner_.running());
}

TEST_F(ReplannerTest, ARestartIsRecordedByTheFirstStepLetThrough) {
  replanner_.Run("a test", "fp2", true);
  RunFor(std::chrono::milliseconds(50));
  EXPECT_TRUE(store_.asked.empty());  // held: nothing recorded yet
  may_write_ = true;
  replanner_.Wake();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp2", "step"));
  EXPECT_TRUE(done_);
}

// A step that ended at a lock held elsewhere is not a failure: the next
// comes a little later (not at once, not a second later), later again
// after each busy one, and firing follows the sweep as far as it says.
TEST_F(ReplannerTest, ABusyStepIsTriedAgainSoon) {
  may_write_ = true;
  store_.busy_steps = 2;
  store_.busy_covered = clock_.Now() + std::chrono::hours(1);
  replanner_.Run("a test", "fp1");
  testing::RunLoopUntil(loop_, [&] { return !store_.asked.empty(); });
  EXPECT_TRUE(replanner_.Covers(clock_.Now()));
  EXPECT_TRUE(replanner_.running());
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("step", "step", "step"));
  ASSERT_EQ(store_.stepped_at.size(), 3u);
  // 20 ms after the first, 40 after the second.
  EXPECT_GE(store_.stepped_at[1] - store_.stepped_at[0], std::chrono::milliseconds(20));
  EXPECT_GE(store_.stepped_at[2] - store_.stepped_at[1], std::chrono::milliseconds(40));
  EXPECT_EQ(told_, 2);  // the second busy step changed nothing
  EXPECT_TRUE(done_);
  EXPECT_EQ(replanner_.progress().failures, 0);
}

// Started on rules other than the database's: the re-plan to them is
// recorded at once, before any purchase is taken; if that fails (another
// daemon's step holding the sweep too long), by the first step, tried
// again until it is.
TEST_F(ReplannerTest, AStartOnOtherRulesRecordsThemAtOnceOrAtTheFirstStep) {
  may_write_ = true;
  store_.replanning = false;
  replanner_.Start("fp2");
  EXPECT_TRUE(replanner_.running());
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp2"));
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp2", "step"));

  store_.asked.clear();
  store_.fingerprint = "fp2";
  store_.failed_sets = 2;  // at the start and at the first step
  done_ = false;
  replanner_.Start("fp3");
  EXPECT_TRUE(replanner_.running());
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp3", "set fp3", "set fp3", "step"));
  EXPECT_EQ(store_.fingerprint, "fp3");
}

// A planning state that cannot be read at start (the store away) is read
// again each second, and firing waits until it is: the config may have
// changed while the daemon was stopped, and nothing else would look again
// before the next start.
TEST_F(ReplannerTest, APlanningStateUnreadAtStartIsReadAgainAndFiringWaitsForIt) {
  may_write_ = true;
  store_.replanning = false;  // planned by fp1
  store_.failed_reads = 2;
  replanner_.Start("fp2");
  EXPECT_FALSE(replanner_.running());
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  EXPECT_EQ(replanner_.progress().failures, 1);
  EXPECT_TRUE(store_.asked.empty());
  testing::RunLoopUntil(loop_, [&] { return done_; });  // two seconds on
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp2", "step"));
  EXPECT_EQ(replanner_.progress().failures, 0);
  EXPECT_TRUE(replanner_.Covers(clock_.Now()));

  // The rules the database was planned by: once read, firing goes on,
  // told as at the end of a re-plan.
  store_.asked.clear();
  done_ = false;
  told_ = 0;
  store_.failed_reads = 1;
  replanner_.Start("fp2");
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_TRUE(store_.asked.empty());
  EXPECT_EQ(told_, 1);
  EXPECT_FALSE(replanner_.running());
  EXPECT_TRUE(replanner_.Covers(clock_.Now()));
}

// A reload while the state is still unread: its run, and the restart it
// asked for (groups by the old rules still being written), stand; the
// read that then works resumes nothing over them.
TEST_F(ReplannerTest, AReloadWhileThePlanningStateIsUnreadIsNotResumedOver) {
  store_.failed_reads = 1;
  replanner_.Start("fp1");
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  // The reload's record, and its run, held until the groups are written.
  store_.fingerprint = "fp2";
  store_.replanning = true;
  replanner_.Run("a reload", "fp2", true);
  RunFor(std::chrono::milliseconds(1200));  // past the next read
  EXPECT_TRUE(store_.asked.empty());
  EXPECT_TRUE(replanner_.running());
  may_write_ = true;
  replanner_.Wake();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("set fp2", "step"));
}

TEST_F(ReplannerTest, WakeWithNothingHeldDoesNothing) {
  may_write_ = true;
  replanner_.Wake();  // not running
  replanner_.Run("a test", "fp1");
  replanner_.Wake();  // a step posted, no retry waiting
  RunFor(std::chrono::milliseconds(100));
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("step"));
}

// Done with its own re-plan (or started on the database's rules), a
// daemon sharing the store looks every `every` whether another daemon's
// reload to the same rules started the sweep again, and steps through it
// too: firing waits for it meanwhile. Not for a re-plan to other rules
// (a daemon reloaded to rules this one does not have), nor once stopped.
TEST_F(ReplannerTest, AFinishedReplanFollowsAnotherDaemonsRestartToItsRules) {
  may_write_ = true;
  store_.replanning = false;
  replanner_.FollowOthers(std::chrono::milliseconds(20));
  replanner_.Start("fp1");
  EXPECT_FALSE(replanner_.running());

  store_.fingerprint = "fp2";  // another daemon reloaded to other rules
  store_.replanning = true;
  RunFor(std::chrono::milliseconds(100));
  EXPECT_FALSE(replanner_.running());
  EXPECT_TRUE(store_.asked.empty());

  store_.fingerprint = "fp1";  // ... or to these
  store_.busy_steps = 3;       // its steps under way
  store_.busy_covered = clock_.Now() - std::chrono::hours(1);
  testing::RunLoopUntil(loop_, [&] { return !store_.asked.empty(); });
  EXPECT_TRUE(replanner_.running());
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  EXPECT_THAT(runs_, ::testing::ElementsAre(0u));  // told before the first step
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("step", "step", "step", "step"));
  EXPECT_FALSE(replanner_.running());
  ASSERT_TRUE(replanner_.progress().finished_at.has_value());

  // And again at the next restart; not once stopped.
  done_ = false;
  store_.replanning = true;
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_EQ(store_.asked.size(), 5u);
  EXPECT_THAT(runs_, ::testing::ElementsAre(0u, 4u));
  replanner_.Stop();
  store_.replanning = true;
  RunFor(std::chrono::milliseconds(100));
  EXPECT_EQ(store_.asked.size(), 5u);
  EXPECT_EQ(runs_.size(), 2u);
  EXPECT_FALSE(replanner_.running());
}

// A daemon whose rules are not those recorded says so at each look; one
// on the recorded rules starts the sweep again once no daemon has said so
// for kOtherRulesGone (docs/scaling.md), and steps through it: the
// purchases the others planned are re-planned.
TEST_F(ReplannerTest, PurchasesPlannedByOtherRulesAreReplannedOnceNoDaemonOnThemIsLeft) {
  may_write_ = true;
  store_.replanning = false;
  replanner_.FollowOthers(std::chrono::milliseconds(20));
  replanner_.Start("fp1");
  replanner_.NoteOtherRulesOnceMore();  // at a stop: the recorded rules are its own
  EXPECT_EQ(store_.notes, 0);
  store_.fingerprint = "fp2";  // another daemon started on other rules
  RunFor(std::chrono::milliseconds(100));
  EXPECT_GE(store_.notes, 2);
  EXPECT_FALSE(replanner_.running());
  EXPECT_TRUE(store_.asked.empty());
  // And once more at a stop, after the purchases it was writing.
  int notes = store_.notes;
  replanner_.NoteOtherRulesOnceMore();
  EXPECT_EQ(store_.notes, notes + 1);

  // Recorded again by a daemon on this one's rules; one on others said so
  // a second ago: not yet.
  store_.fingerprint = "fp1";
  notes = store_.notes;
  store_.other_rules_seen = std::chrono::seconds(1);
  RunFor(std::chrono::milliseconds(100));
  EXPECT_EQ(store_.notes, notes);
  EXPECT_TRUE(store_.asked.empty());
  EXPECT_FALSE(replanner_.running());

  store_.other_rules_seen = Replanner::kOtherRulesGone;
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(store_.asked, ::testing::ElementsAre("replan once others gone", "step"));
  EXPECT_THAT(runs_, ::testing::ElementsAre(1u));
  EXPECT_FALSE(replanner_.running());
  replanner_.NoteOtherRulesOnceMore();
  EXPECT_EQ(store_.notes, notes);
}

// On a thread, the loop goes on while a step waits on the server; the
// step runs under the rules in force when it was handed over, and its
// outcome is taken on the loop.
TEST_F(ReplannerTest, AStepOnTheThreadDoesNotHoldTheLoop) {
  may_write_ = true;
  GatedStore* gated = UseThread();
  ASSERT_NE(gated, nullptr);
  auto reloaded = std::make_shared<const Rules>();
  loop_rules_.Swap(reloaded);
  replanner_.Run("a test", "fp1");
  const auto began = std::chrono::steady_clock::now();
  RunFor(std::chrono::milliseconds(50));  // the step posted, handed over
  ASSERT_TRUE(gated->Entered());
  RunFor(std::chrono::milliseconds(50));
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(5));
  EXPECT_TRUE(replanner_.running());
  EXPECT_FALSE(replanner_.Covers(clock_.Now()));
  EXPECT_EQ(told_, 0);
  gated->Open();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_TRUE(done_);
  EXPECT_FALSE(replanner_.running());
  EXPECT_EQ(replanner_.progress().counts.moved, 1);
  EXPECT_THAT(gated->ran_under(), ::testing::ElementsAre(reloaded.get()));
  EXPECT_TRUE(store_.asked.empty());  // the loop's store took no step
}

// Run() (a reload) while a step is under way on the thread: that step's
// writes are counted, but how far it got (here, to the end) is the old
// run's: firing waits for the next step, which the new run takes.
TEST_F(ReplannerTest, AStepUnderWayWhenTheSweepStartsAgainIsNotTakenForTheNewRun) {
  may_write_ = true;
  GatedStore* gated = UseThread();
  ASSERT_NE(gated, nullptr);
  replanner_.Run("a test", "fp1");
  RunFor(std::chrono::milliseconds(20));
  ASSERT_TRUE(gated->Entered());
  replanner_.Run("a reload", "fp1");
  gated->Open();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_EQ(gated->steps(), 2);
  // The first step's end was the old run's: told (what it wrote), still
  // running, nothing covered; then the new run's step.
  EXPECT_THAT(told_states_,
              ::testing::ElementsAre(Told{false, true, false}, Told{true, false, true}));
  EXPECT_EQ(replanner_.progress().counts.moved, 1);  // this run's step only
  EXPECT_EQ(runs_.size(), 2u);
}

// A restart's record on the thread (a reload that could not record its
// re-plan) that reaches the server after a later reload's own record
// writes the earlier rules over it: the later run records its rules again
// before it steps, or its sweep would find the earlier rules recorded and
// end as superseded, with firing going on by rules nothing re-planned to.
TEST_F(ReplannerTest, AnEarlierRunsLateRecordIsRecordedOverAgain) {
  may_write_ = true;
  GatedStore* gated = UseThread();
  ASSERT_NE(gated, nullptr);
  gated->gate_records = true;
  replanner_.Run("a reload that could not record", "fp2", true);
  RunFor(std::chrono::milliseconds(20));
  ASSERT_TRUE(gated->Entered());  // its record, held
  replanner_.Run("a later reload, recorded on the loop", "fp3");
  gated->Open();
  testing::RunLoopUntil(loop_, [&] { return done_; });
  EXPECT_THAT(gated->recorded(), ::testing::ElementsAre("fp2", "fp3"));
  EXPECT_EQ(gated->steps(), 2);
}

}  // namespace
}  // namespace tp
