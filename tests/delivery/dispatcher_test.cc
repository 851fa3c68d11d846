// In-process: the dispatcher over a fake outbox (OutboxStore) on a fake
// clock, delivering to a real HTTP server on loopback in the same
// io_context. The clock starts a year ahead of the wall clock, so the
// workers' timers never fire during a test: the test moves the clock and
// wakes the dispatcher, and every retry, dead letter and circuit decision
// follows the fake time alone.
#include "delivery/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <fstream>
#include <functional>
#include <map>

#include "harness.h"
#include "http/server.h"
#include "store/outbox_store.h"
#include "temp_dir.h"

namespace tp {
namespace {

using ::testing::HasSubstr;

// The outbox as a vector; what the dispatcher records, kept for the test.
class FakeOutbox final : public OutboxStore {
 public:
  struct Entry {
    OutboxItem item;
    std::string sink;
    Instant next;
    bool dead = false;
    std::string last_error;
  };

  void Add(std::int64_t id, const std::string& sink, Instant due) {
    entries_.push_back(
        {{id, id, "tp-" + std::to_string(id), R"({"n":)" + std::to_string(id) + "}", 0},
         sink,
         due,
         false,
         ""});
  }
  const Entry* Find(std::int64_t id) const {
    for (const Entry& e : entries_) {
      if (e.item.id == id) return &e;
    }
    return nullptr;
  }
  const std::vector<std::string>& history(std::int64_t touchpoint) { return history_[touchpoint]; }
  int recorded() const { return recorded_; }

  StatusOr<std::vector<OutboxItem>> DueDeliveries(std::string_view sink, Instant now,
                                                  std::size_t max, bool in_order) override {
    std::vector<const Entry*> due;
    for (const Entry& e : entries_) {
      if (e.sink == sink && !e.dead && e.next <= now) due.push_back(&e);
    }
    std::sort(due.begin(), due.end(), [&](const Entry* a, const Entry* b) {
      return in_order ? a->item.id < b->item.id
                      : std::pair(a->next, a->item.id) < std::pair(b->next, b->item.id);
    });
    std::vector<OutboxItem> out;
    for (const Entry* e : due) {
      if (out.size() == max) break;
      out.push_back(e->item);
    }
    return out;
  }
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now) override {
    std::optional<Instant> next;
    for (const Entry& e : entries_) {
      if (e.sink == sink && !e.dead && e.next > now && (!next || e.next < *next)) next = e.next;
    }
    return next;
  }
  Status RecordDeliveries(std::span<const DeliveryResult> results) override {
    for (const DeliveryResult& r : results) {
      auto it = std::find_if(entries_.begin(), entries_.end(),
                             [&](const Entry& e) { return e.item.id == r.id && !e.dead; });
      if (it == entries_.end()) continue;
      ++recorded_;
      history_[r.touchpoint].push_back(r.history);
      switch (r.kind) {
        case DeliveryResult::Kind::kDelivered:
          entries_.erase(it);
          break;
        case DeliveryResult::Kind::kRetry:
          it->item.attempts = r.attempts;
          it->next = r.next_attempt_at;
          it->last_error = r.error;
          break;
        case DeliveryResult::Kind::kDead:
          it->item.attempts = r.attempts;
          it->dead = true;
          it->last_error = r.error;
          break;
      }
    }
    return Status::Ok();
  }
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit) override {
    std::vector<DeadLetter> out;
    for (const Entry& e : entries_) {
      if (!e.dead || e.item.id <= after || (!sink.empty() && e.sink != sink)) continue;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back({e.item.id, e.sink, e.item.touchpoint_id, e.item.event, e.item.attempts,
                     e.last_error, e.next});
    }
    return out;
  }
  StatusOr<int> ReplayDeadLetters(std::int64_t id, std::string_view sink, Instant now) override {
    int n = 0;
    for (Entry& e : entries_) {
      if (!e.dead || (id != 0 && e.item.id != id) || (!sink.empty() && e.sink != sink)) continue;
      e.dead = false;
      e.item.attempts = 0;
      e.next = now;
      ++n;
    }
    return n;
  }
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink() override {
    std::map<std::string, std::int64_t> by;
    for (const Entry& e : entries_) {
      if (!e.dead) ++by[e.sink];
    }
    return std::vector<std::pair<std::string, std::int64_t>>(by.begin(), by.end());
  }
  StatusOr<std::int64_t> OutboxDepth(std::string_view sink) override {
    return static_cast<std::int64_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [&](const Entry& e) { return e.sink == sink && !e.dead; }));
  }
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink) override {
    return static_cast<std::int64_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [&](const Entry& e) { return e.sink == sink && e.dead; }));
  }

 private:
  std::vector<Entry> entries_;
  std::map<std::int64_t, std::vector<std::string>> history_;
  int recorded_ = 0;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : clock_(SystemClock().Now() + std::chrono::hours(24 * 365)), receiver_(io_, HttpLimits{}) {}

  void SetUp() override {
    ASSERT_TRUE(receiver_.Listen("127.0.0.1:0").ok());
    receiver_.Serve([this](HttpRequest req, HttpRespond respond) {
      bodies_.push_back(req.body);
      int status = 200;
      if (!answers_.empty()) {
        status = answers_.front();
        answers_.pop_front();
      }
      respond(HttpResponse{status, status == 200 ? "ok" : "not now"});
    });
  }

  // A dispatcher for one webhook sink "crm" at the receiver, one attempt at
  // a time; `retry` is the sink's retry setting.
  std::unique_ptr<Dispatcher> Make(const std::string& retry) {
    std::ofstream(dir_.path() + "/crm.secret") << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
    rules_ =
        testing::MustLoad(R"(version: 1
products: {daily: {supply_days: 15}}
sinks:
  - {name: crm, type: webhook, url: "http://)" +
                          receiver_.LocalAddress() + R"(/hook", secret_file: ")" + dir_.path() +
                          R"(/crm.secret", concurrency: 1, retry: )" + retry + R"(}
cadences:
  - name: trust
    steps: [{after: 1d, topic: hello}]
)");
    auto d = Dispatcher::Create(io_, outbox_, clock_, *rules_);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? std::move(*d) : nullptr;
  }

  // Runs the loop until `done` (at most 5 s of real time).
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  // Runs the loop a little: for what must not happen.
  void RunAWhile() {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(200));
  }

  testing::TempDir dir_;
  boost::asio::io_context io_;
  FakeClock clock_;
  FakeOutbox outbox_;
  HttpServer receiver_;
  std::deque<int> answers_;  // the receiver's statuses, in turn; then 200
  std::vector<std::string> bodies_;
  std::shared_ptr<const Rules> rules_;
};

TEST_F(DispatcherTest, RetriesAFailureAfterItsBackoffThenDelivers) {
  auto d = Make("{initial: 10s, max_delay: 1h, max_attempts: 5}");
  answers_ = {503};
  const Instant start = clock_.Now();
  outbox_.Add(1, "crm", start);
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 1; }));
  const FakeOutbox::Entry* e = outbox_.Find(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->item.attempts, 1);
  EXPECT_THAT(e->last_error, HasSubstr("HTTP 503"));
  // The backoff: the initial delay within a quarter of jitter.
  EXPECT_GE(e->next - start, std::chrono::milliseconds(7500));
  EXPECT_LE(e->next - start, std::chrono::milliseconds(12500));
  // Not before then, however often it is woken.
  clock_.Advance(std::chrono::seconds(5));
  d->Wake();
  RunAWhile();
  EXPECT_EQ(bodies_.size(), 1u);
  clock_.Advance(std::chrono::seconds(10));
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 2; }));
  EXPECT_EQ(outbox_.Find(1), nullptr);  // delivered, so gone from the outbox
  ASSERT_EQ(bodies_.size(), 2u);
  EXPECT_EQ(bodies_[0], bodies_[1]);  // the same bytes every attempt
  EXPECT_THAT(outbox_.history(1).back(), HasSubstr("delivered to crm: HTTP 200"));
  EXPECT_THAT(outbox_.history(1).back(), HasSubstr("(attempt 2)"));
}

TEST_F(DispatcherTest, TheLastAttemptDeadLettersAndAClientErrorAtOnce) {
  auto d = Make("{initial: 1s, max_delay: 1s, max_attempts: 3}");
  answers_ = {500, 500, 500, 422};
  outbox_.Add(1, "crm", clock_.Now());
  d->Wake();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == attempt; })) << attempt;
    clock_.Advance(std::chrono::seconds(2));
    d->Wake();
  }
  const FakeOutbox::Entry* e = outbox_.Find(1);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->dead);
  EXPECT_EQ(e->item.attempts, 3);
  EXPECT_THAT(outbox_.history(1).back(), HasSubstr("dead-lettered on crm after 3 attempts"));
  EXPECT_EQ(outbox_.DeadLetterCount("crm").value(), 1);
  // A 4xx other than 408/429 is not retried: dead at the first attempt.
  outbox_.Add(2, "crm", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 4; }));
  ASSERT_NE(outbox_.Find(2), nullptr);
  EXPECT_TRUE(outbox_.Find(2)->dead);
  EXPECT_THAT(outbox_.history(2).back(), HasSubstr("a 422 is not retried"));
}

TEST_F(DispatcherTest, TheCircuitOpensAfterFiveFailuresAndProbesOnceWhenItHalfOpens) {
  auto d = Make("{initial: 30s, max_delay: 1h, max_attempts: 100}");
  answers_ = std::deque<int>(6, 503);
  for (int i = 1; i <= 8; ++i) outbox_.Add(i, "crm", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() >= 5; }));
  RunAWhile();
  ASSERT_EQ(d->Health().size(), 1u);
  EXPECT_EQ(d->Health()[0].state, "open");
  EXPECT_EQ(d->Health()[0].consecutive_failures, 5);
  EXPECT_EQ(bodies_.size(), 5u);
  // Open for the initial delay: nothing is attempted, due or not.
  clock_.Advance(std::chrono::seconds(20));
  d->Wake();
  RunAWhile();
  EXPECT_EQ(bodies_.size(), 5u);
  // Then half-open: one probe, no more. It fails: open again, for twice as
  // long.
  clock_.Advance(std::chrono::seconds(20));
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 6; }));
  RunAWhile();
  EXPECT_EQ(bodies_.size(), 6u);
  EXPECT_EQ(d->Health()[0].state, "open");
  clock_.Advance(std::chrono::seconds(50));
  d->Wake();
  RunAWhile();
  EXPECT_EQ(bodies_.size(), 6u);
  // The next probe succeeds: closed, and the rest follow.
  clock_.Advance(std::chrono::seconds(20));
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return d->Health()[0].state == "ok"; }));
  // Every entry is due by now (those that failed, after their backoff).
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.OutboxDepth("crm").value() == 0; }));
  EXPECT_EQ(outbox_.OutboxDepth("crm").value(), 0);
  EXPECT_EQ(outbox_.DeadLetterCount("crm").value(), 0);
}

}  // namespace
}  // namespace tp
