// IngestBatcher writing on a thread of its own (UseThread; the daemon does
// so on PostgreSQL), here over a SQLite file: every answer, hook and metric
// comes on the loop's thread, after the commit; a request that conflicts
// rolls back alone and only what committed is counted; opt-outs are written
// in order with the purchases and taken when those are not; a Flush() is
// Written() once the groups handed over are; Stop() answers what was
// queued. On the loop (SQLite's), one group is written a turn.
#include "daemon/ingest_batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "due_now.h"
#include "harness.h"
#include "store/sqlite_store.h"
#include "temp_dir.h"

namespace tp {
namespace {

using ::testing::HasSubstr;

class IngestBatcherTest : public ::testing::Test {
 protected:
  IngestBatcherTest() : rules_(testing::MustLoad(testing::kDueNowConfig)), metrics_("test") {
    auto loop_store = SqliteStore::Open(dir_.path() + "/loop.db", rules_);
    EXPECT_TRUE(loop_store.ok()) << loop_store.status().message();
    loop_store_ = std::move(*loop_store);
    MakeBatcher(0);
  }

  // The batcher, writing on a thread in groups of at most `group_items`,
  // with at most `max_waiting` purchases and events waiting, and
  // `max_requests` requests.
  void MakeBatcher(std::size_t group_items,
                   std::size_t max_waiting = IngestBatcher::kMaxWaitingItems,
                   std::size_t max_requests = IngestBatcher::kMaxWaitingRequests) {
    MakeLoopBatcher();
    const Status s = batcher_->UseThread(
        [this](const RulesInForce& own) {
          auto opened = SqliteStore::Open(dir_.path() + "/thread.db", own);
          if (!opened.ok()) return StatusOr<std::unique_ptr<Store>>(opened.status());
          return StatusOr<std::unique_ptr<Store>>(std::unique_ptr<Store>(std::move(*opened)));
        },
        group_items, max_waiting, max_requests);
    EXPECT_TRUE(s.ok()) << s.message();
  }

  // The batcher, writing on the loop over loop_store_.
  void MakeLoopBatcher() {
    batcher_ = std::make_unique<IngestBatcher>(
        loop_, *loop_store_, clock_, metrics_, rules_,
        IngestBatcher::Hooks{.no_room = [this] { return no_room_; },
                             .storage_full = [this] { OnLoop("storage_full"); },
                             .committed = [this] { OnLoop("committed"); },
                             .written = [this] { OnLoop("written"); }});
  }

  void OnLoop(const std::string& hook) {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread_) << hook;
    hooks_.push_back(hook);
  }

  // An opt-out (or opt-in) of `buyer`; its answer lands in answers_.
  void Opt(const std::string& buyer, bool opt_out) {
    batcher_->Submit(OptChange{buyer, opt_out}, [this](HttpResponse r) {
      EXPECT_EQ(std::this_thread::get_id(), loop_thread_);
      answers_.push_back(std::move(r));
    });
  }

  // A request of purchases by `buyer`; its answer lands in answers_.
  void Buy(const std::vector<std::string>& orders, const std::string& buyer, int amount = 10) {
    std::vector<Purchase> items;
    for (const std::string& order : orders) {
      items.push_back({order, buyer, "p", 1, static_cast<double>(amount),
                       clock_.Now() - std::chrono::minutes(1), ""});
    }
    batcher_->Submit(std::move(items), [this](HttpResponse r) {
      EXPECT_EQ(std::this_thread::get_id(), loop_thread_);
      answers_.push_back(std::move(r));
    });
  }

  void RunUntilAnswered(std::size_t n) {
    testing::RunLoopUntil(loop_, [&] { return answers_.size() >= n; });
    ASSERT_EQ(answers_.size(), n);
  }

  testing::TempDir dir_;
  RulesInForce rules_;
  SystemClock clock_;
  DaemonMetrics metrics_;
  boost::asio::io_context loop_;
  const std::thread::id loop_thread_ = std::this_thread::get_id();
  std::unique_ptr<SqliteStore> loop_store_;
  std::unique_ptr<IngestBatcher> batcher_;
  std::vector<std::string> hooks_;
  std::vector<HttpResponse> answers_;
  std::optional<std::string> no_room_;
};

TEST_F(IngestBatcherTest, AnswersCountsAndHooksComeOnTheLoopAfterTheCommit) {
  Buy({"o1", "o2"}, "b1");
  Buy({"o3"}, "b2");
  RunUntilAnswered(2);
  EXPECT_EQ(answers_[0].status, 200) << answers_[0].body;
  EXPECT_THAT(answers_[0].body, HasSubstr("\"accepted\":2"));
  EXPECT_EQ(answers_[1].status, 200) << answers_[1].body;
  EXPECT_THAT(hooks_, ::testing::Contains("committed"));
  const std::string text = metrics_.registry.Render();
  EXPECT_THAT(text, HasSubstr("touchpoint_ingest_purchases_total{outcome=\"accepted\"} 3"));
  // Two steps for each of the three purchases.
  EXPECT_THAT(text, HasSubstr("touchpoint_touchpoints_planned_total{cadence=\"c\"} 6"));
}

TEST_F(IngestBatcherTest, AConflictRollsBackAloneAndOnlyWhatCommittedIsCounted) {
  Buy({"o1"}, "b1", 10);
  RunUntilAnswered(1);
  Buy({"o1"}, "b1", 99);  // the same order, another amount: 409
  Buy({"o2"}, "b2");
  RunUntilAnswered(3);
  EXPECT_EQ(answers_[1].status, 409) << answers_[1].body;
  EXPECT_EQ(answers_[2].status, 200) << answers_[2].body;
  const std::string text = metrics_.registry.Render();
  EXPECT_THAT(text, HasSubstr("touchpoint_ingest_purchases_total{outcome=\"accepted\"} 2"));
  EXPECT_THAT(text, HasSubstr("touchpoint_ingest_purchases_total{outcome=\"conflict\"} 1"));
  EXPECT_THAT(text, HasSubstr("touchpoint_touchpoints_planned_total{cadence=\"c\"} 4"));
}

// Opt-outs and opt-ins are written with the groups (in order with the
// purchases before them), and taken when purchases are not.
TEST_F(IngestBatcherTest, AnOptOutIsWrittenInOrderAndSaysWhatItSuppressed) {
  Buy({"o1", "o2"}, "b1");
  Opt("b1", true);
  Opt("b2", true);  // not known yet: remembered
  RunUntilAnswered(3);
  ASSERT_EQ(answers_[1].status, 200) << answers_[1].body;
  EXPECT_THAT(answers_[1].body, HasSubstr("\"buyer_id\":\"b1\""));
  EXPECT_THAT(answers_[1].body, HasSubstr("\"opted_out\":true"));
  EXPECT_THAT(answers_[1].body, HasSubstr("\"suppressed\":4"));
  EXPECT_THAT(answers_[2].body, HasSubstr("\"suppressed\":0"));
  EXPECT_THAT(metrics_.registry.Render(),
              HasSubstr("touchpoint_touchpoints_suppressed_total{cadence=\"c\"} 4"));

  no_room_ = "the disk is full";
  Buy({"o3"}, "b2");
  EXPECT_EQ(answers_.back().status, 503);  // at once
  Opt("b2", false);
  RunUntilAnswered(5);
  ASSERT_EQ(answers_[4].status, 200) << answers_[4].body;
  EXPECT_THAT(answers_[4].body, HasSubstr("\"opted_out\":false"));
  EXPECT_THAT(answers_[4].body, ::testing::Not(HasSubstr("suppressed")));
  no_room_.reset();
  Buy({"o3"}, "b2");  // opted in again: planned
  RunUntilAnswered(6);
  EXPECT_THAT(answers_[5].body, HasSubstr("\"accepted\":1"));
  EXPECT_THAT(metrics_.registry.Render(),
              HasSubstr("touchpoint_touchpoints_planned_total{cadence=\"c\"} 6"));
}

TEST_F(IngestBatcherTest, AFlushIsWrittenOnceItsGroupsAre) {
  EXPECT_TRUE(batcher_->Written());
  Buy({"o1"}, "b1");
  batcher_->Flush();  // hands the group over without waiting
  EXPECT_TRUE(answers_.empty());
  EXPECT_FALSE(batcher_->Written());
  RunUntilAnswered(1);
  testing::RunLoopUntil(loop_, [&] { return batcher_->Written(); });
  EXPECT_TRUE(batcher_->Written());
  EXPECT_EQ(std::count(hooks_.begin(), hooks_.end(), "written"), 1);
  Buy({"o2"}, "b2");  // after the flush: Written() does not wait for it
  EXPECT_TRUE(batcher_->Written());
  RunUntilAnswered(2);
  EXPECT_EQ(std::count(hooks_.begin(), hooks_.end(), "written"), 1);
}

// With a limit, what waits is handed over as several groups of at most
// that many items, each request whole (one larger than the limit is a
// group of its own), in order, and all at once: a Flush() is Written()
// once the last is.
TEST_F(IngestBatcherTest, WaitingRequestsAreHandedOverInGroupsOfAtMostTheLimit) {
  MakeBatcher(2);
  Buy({"o1"}, "b1");
  Buy({"o2"}, "b2");
  Buy({"o3"}, "b3");
  Buy({"o4", "o5", "o6"}, "b4");
  Buy({"o7"}, "b5");
  batcher_->Flush();
  RunUntilAnswered(5);
  testing::RunLoopUntil(loop_, [&] { return batcher_->Written(); });
  for (const HttpResponse& r : answers_) EXPECT_EQ(r.status, 200) << r.body;
  // [o1 o2] [o3] [o4 o5 o6] [o7]
  EXPECT_EQ(std::count(hooks_.begin(), hooks_.end(), "committed"), 4);
  EXPECT_EQ(std::count(hooks_.begin(), hooks_.end(), "written"), 1);
  EXPECT_EQ(hooks_.back(), "written");
}

// What waits to be written is bounded: past the bound a request is
// answered 503 at once (a server whose statements hang would otherwise let
// requests, and clients' retries of them, pile up in memory), an opt-out
// is still taken, and once the groups are written requests are taken again.
TEST_F(IngestBatcherTest, TooManyWaitingToBeWrittenIsA503AtOnce) {
  MakeBatcher(0, 3);
  Buy({"o1", "o2"}, "b1");
  Buy({"o3"}, "b2");
  Buy({"o4"}, "b3");  // a fourth
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(answers_[0].status, 503);
  EXPECT_THAT(answers_[0].body,
              HasSubstr("3 purchases, events and opt changes wait to be written"));
  EXPECT_THAT(answers_[0].headers,
              ::testing::Contains(std::pair<std::string, std::string>("Retry-After", "10")));
  Opt("b4", true);
  RunUntilAnswered(4);
  for (std::size_t i = 1; i < answers_.size(); ++i) {
    EXPECT_EQ(answers_[i].status, 200) << answers_[i].body;
  }
  Buy({"o4", "o5", "o6"}, "b3");
  RunUntilAnswered(5);
  EXPECT_EQ(answers_.back().status, 200) << answers_.back().body;
  // Larger than the bound: taken when nothing waits.
  Buy({"o7", "o8", "o9", "o10"}, "b5");
  RunUntilAnswered(6);
  EXPECT_EQ(answers_.back().status, 200) << answers_.back().body;
}

// Each waiting request holds its client's connection: past the bound on
// requests, an opt-out too is answered 503 at once (before, opt changes
// were taken however many waited, a socket each for as long as the server
// hung).
TEST_F(IngestBatcherTest, TooManyRequestsWaitingIsA503AtOnceEvenForAnOptOut) {
  MakeBatcher(0, IngestBatcher::kMaxWaitingItems, 2);
  Buy({"o1"}, "b1");
  Opt("b2", true);
  Opt("b3", true);  // a third request
  Buy({"o2"}, "b4");
  ASSERT_EQ(answers_.size(), 2u);
  for (const HttpResponse& r : answers_) {
    EXPECT_EQ(r.status, 503);
    EXPECT_THAT(r.body, HasSubstr("2 requests wait to be written"));
  }
  EXPECT_THAT(answers_[0].body, HasSubstr("an opt-out cannot be taken now"));
  RunUntilAnswered(4);
  EXPECT_EQ(answers_[2].status, 200) << answers_[2].body;
  EXPECT_EQ(answers_[3].status, 200) << answers_[3].body;
  Opt("b3", true);
  RunUntilAnswered(5);
  EXPECT_EQ(answers_.back().status, 200) << answers_.back().body;
}

TEST_F(IngestBatcherTest, StopAnswersWhatWasQueuedAndRefusesMore) {
  Buy({"o1"}, "b1");
  Buy({"o2"}, "b2");
  batcher_->Stop();
  ASSERT_TRUE(batcher_->Closed().has_value());
  EXPECT_EQ(batcher_->Closed()->status, 503);
  // As every 503 (docs/api.md): a client that honours it comes back to
  // the daemon once it has restarted, or to another.
  const std::optional<HttpResponse> closed = batcher_->Closed();
  EXPECT_THAT(closed->headers,
              ::testing::Contains(std::pair<std::string, std::string>("Retry-After", "10")));
  EXPECT_THAT(closed->body, HasSubstr("shutting down"));
  // The loop runs until the answers are out, and then runs out of work.
  loop_.restart();
  loop_.run();
  ASSERT_EQ(answers_.size(), 2u);
  EXPECT_EQ(answers_[0].status, 200) << answers_[0].body;
  EXPECT_EQ(answers_[1].status, 200) << answers_[1].body;
}

// On the loop, a turn writes one group of at most 1,000 purchases, events
// and opt changes, where requests allow: the loop is held for one group's
// write (tens of milliseconds), not for every request waiting. A Flush()
// (a reload) writes them all at once.
TEST_F(IngestBatcherTest, OnTheLoopOneGroupIsWrittenATurn) {
  MakeLoopBatcher();
  const auto orders = [](const std::string& prefix) {
    std::vector<std::string> ids;
    for (int i = 0; i < 600; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
  };
  Buy(orders("a"), "b1");
  Buy(orders("b"), "b2");
  Buy(orders("c"), "b3");
  EXPECT_EQ(loop_.run_one(), 1U);
  EXPECT_EQ(answers_.size(), 1U);  // 600 and 600 more would pass 1,000
  EXPECT_EQ(loop_.run_one(), 1U);
  EXPECT_EQ(answers_.size(), 2U);
  Buy({"d"}, "b4");
  batcher_->Flush();
  ASSERT_EQ(answers_.size(), 4U);
  for (const HttpResponse& r : answers_) EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(answers_[3].body, HasSubstr("\"accepted\":1"));
  EXPECT_THAT(metrics_.registry.Render(),
              HasSubstr("touchpoint_ingest_purchases_total{outcome=\"accepted\"} 1801"));
  // What the Flush() wrote is not written again by the turn it left posted.
  loop_.run();
  EXPECT_EQ(answers_.size(), 4U);
}

}  // namespace
}  // namespace tp
