// The dispatcher's webhooks: retries, dead letters, the circuit, answers
// and results the store refuses (fixture: dispatcher_fixture.h). Redis
// streams and reloads: dispatcher_stream_test.cc.
#include "delivery/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/text.h"
#include "delivery/dispatcher_fixture.h"
#include "delivery/fake_outbox.h"
#include "delivery/worker.h"
#include "harness.h"

namespace tp {
namespace {

using testing::DispatcherTest;
using testing::FakeOutbox;
using ::testing::HasSubstr;

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

// An outbox read failing for want of the store is told to the daemon (it
// then probes its database: a frozen PostgreSQL fails only this), each
// time; another failure is not.
TEST_F(DispatcherTest, AnOutboxReadFailingForWantOfTheStoreIsTold) {
  auto d = Make("{initial: 10s, max_delay: 1h, max_attempts: 5}");
  int told = 0;
  d->set_store_unavailable([&] { ++told; });
  outbox_.Add(1, "crm", clock_.Now());
  outbox_.due_fail = Status::Error("no such table");
  d->Wake();
  RunAWhile();
  EXPECT_EQ(told, 0);
  outbox_.due_fail = Status::Unavailable("the server did not answer within 10000 ms");
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return told >= 1; }));
  outbox_.due_fail = Status::Ok();
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 1; }));
  EXPECT_TRUE(bodies_.size() == 1u);
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

// A receiver's answer in bytes that are not UTF-8, or cut inside a
// character by the 200 bytes kept of it: the error stored is UTF-8 (a
// PostgreSQL store refuses anything else, and the dead letters are JSON).
TEST_F(DispatcherTest, AnAnswerThatIsNotUtf8IsStoredAsUtf8) {
  auto d = Make("{initial: 10s, max_delay: 1h, max_attempts: 5}");
  answers_ = {500, 503};
  answer_bodies_ = {"Erreur \xE9tendue\r\n\xFF", std::string(199, 'x') + "\xC3\xA9 and more"};
  outbox_.Add(1, "crm", clock_.Now());
  outbox_.Add(2, "crm", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 2; }));
  for (std::int64_t id : {1, 2}) {
    const FakeOutbox::Entry* e = outbox_.Find(id);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(InvalidUtf8At(e->last_error), std::nullopt) << e->last_error;
    EXPECT_EQ(InvalidUtf8At(outbox_.history(id).back()), std::nullopt);
  }
  const std::string first = outbox_.Find(1)->last_error, second = outbox_.Find(2)->last_error;
  const std::string& latin1 = first.find("HTTP 500") != std::string::npos ? first : second;
  const std::string& cut = &latin1 == &first ? second : first;
  EXPECT_EQ(latin1, "HTTP 500: Erreur \uFFFDtendue  \uFFFD");
  EXPECT_EQ(cut, "HTTP 503: " + std::string(199, 'x') + "...");
}

// A result the store refuses (not a store that is away) holds up only
// itself: the others are recorded, and it is tried again until it can be.
TEST_F(DispatcherTest, AResultTheStoreRefusesHoldsUpOnlyItself) {
  auto d = Make("{initial: 10s, max_delay: 1h, max_attempts: 5}");
  outbox_.refuse = 2;
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "crm", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 2; }));
  EXPECT_EQ(outbox_.Find(1), nullptr);
  EXPECT_EQ(outbox_.Find(3), nullptr);
  ASSERT_NE(outbox_.Find(2), nullptr);
  // Not attempted again meanwhile: its result is still to be written.
  RunAWhile();
  EXPECT_EQ(bodies_.size(), 3u);
  outbox_.refuse = 0;
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 3; }));  // within kStoreRetry
  EXPECT_EQ(outbox_.Find(2), nullptr);
  EXPECT_EQ(bodies_.size(), 3u);
}

// Stopping with results the store cannot take (the server away, a full
// disk): they are tried a few times, then given up, and the dispatcher
// leaves the loop (before, it tried every second for as long as the store
// stayed away, so the daemon's loop never ran out and systemd killed it).
TEST_F(DispatcherTest, AStopGivesUpResultsTheStoreCannotTake) {
  auto d = Make("{initial: 10s, max_delay: 1h, max_attempts: 5}");
  outbox_.record_fail = Status::Unavailable("the database is away");
  outbox_.Add(1, "crm", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.record_calls >= 1; }));
  const int before = outbox_.record_calls;
  d->Stop();
  io_.restart();
  io_.run_for(kStoreRetry * (kStopFlushTries + 1) + kStoreRetry / 2);
  const int calls = outbox_.record_calls;
  EXPECT_EQ(calls - before, kStopFlushTries);
  io_.restart();
  io_.run_for(kStoreRetry * 2);
  EXPECT_EQ(outbox_.record_calls, calls);
  EXPECT_EQ(bodies_.size(), 1u);
}

}  // namespace
}  // namespace tp
