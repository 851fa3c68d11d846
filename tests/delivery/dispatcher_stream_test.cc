// The dispatcher's Redis streams (one deliverer at a time among daemons
// sharing a store, in order): let go when this daemon cannot deliver them,
// again when the store was away, standing by while another daemon
// delivers; and reloads that replace a stream's worker or change a sink's
// type under its name (fixture: dispatcher_fixture.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "delivery/dispatcher.h"
#include "delivery/dispatcher_fixture.h"
#include "e2e/redis_server.h"
#include "harness.h"

namespace tp {
namespace {

using testing::DispatcherTest;
using testing::SilentServer;

// A Redis sink (one deliverer at a time, in order, among daemons sharing a
// store) is let go when this daemon cannot deliver it: its circuit open
// (Redis cannot be reached), with nothing in flight; and again when a reload
// replaces its worker. The new worker delivers every event, in order.
TEST_F(DispatcherTest, ARedisSinkThatCannotBeReachedIsLetGoAndAReloadDeliversItInOrder) {
  const int live = testing::PortForLater();
  testing::RedisServer redis;
  redis.Start(dir_.path(), live);
  const int dead = testing::PortForLater();  // another: `live` is taken
  const auto rules = [](int port) { return WithSink(RedisSink(port)); };
  auto first = rules(dead);
  auto d = Dispatcher::Create(io_, outbox_, clock_, *first);
  ASSERT_TRUE(d.ok()) << d.status().message();
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));
  EXPECT_EQ(outbox_.let_go, std::vector<std::string>{"events"});
  EXPECT_EQ((*d)->Health()[0].state, "open");
  EXPECT_EQ(outbox_.recorded(), 0);  // nothing sent: nothing recorded

  auto second = rules(live);
  auto prepared = (*d)->Prepare(*second);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  (*d)->Commit(std::move(*prepared), *second);
  EXPECT_EQ(outbox_.let_go.size(), 2u);  // the old worker, stopped
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 3; }));
  std::vector<std::string> events;
  for (auto& e : redis.Entries("touchpoints")) events.push_back(e["event"]);
  EXPECT_EQ(events, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
  EXPECT_EQ(outbox_.let_go.size(), 2u);  // delivering: kept
  (*d)->Stop();
}

// Letting a Redis sink go fails (the store is away): it is let go again a
// second later, and no more once it has been.
TEST_F(DispatcherTest, ARedisSinkThatCouldNotBeLetGoIsLetGoAgain) {
  outbox_.let_go_failures = 1;
  auto d = UnreachableStream(io_);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(RunUntil([&] { return outbox_.let_go.size() == 2; }));  // within kStoreRetry
  EXPECT_EQ(outbox_.let_go_failures, 0);
  io_.restart();
  io_.run_for(std::chrono::milliseconds(1500));  // past another retry's time (kStoreRetry)
  EXPECT_EQ(outbox_.let_go.size(), 2u);
  d->Stop();
}

// Letting a Redis sink go fails otherwise than by the store being away:
// not tried again each second (it would fail each time).
TEST_F(DispatcherTest, ARedisSinkWhoseLetGoTheStoreRefusesIsNotTriedEachSecond) {
  outbox_.let_go_failures = 100;
  outbox_.let_go_error = Status::Error("permission denied for function pg_advisory_unlock");
  auto d = UnreachableStream(io_);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));
  io_.restart();
  io_.run_for(std::chrono::milliseconds(1500));  // past a retry's time (kStoreRetry)
  EXPECT_EQ(outbox_.let_go.size(), 1u);
  d->Stop();
}

// A stream's worker replaced at a reload while its let-go waits to be
// tried again (the store away): once the daemon stops, its loop does not
// wait for that try.
TEST_F(DispatcherTest, AStoppingDaemonDoesNotWaitToLetGoAReplacedStreamAgain) {
  boost::asio::io_context io;  // the dispatcher's alone: it stops with its work
  outbox_.let_go_failures = 100;
  auto d = UnreachableStream(io);
  ASSERT_NE(d, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (outbox_.let_go.empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(outbox_.let_go.empty());
  const auto without = WithSink("{name: q, type: queue}");
  auto prepared = d->Prepare(*without);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  d->Commit(std::move(*prepared), *without);
  d->Stop();
  // What is ready runs (the cancelled wait's handler), and then the loop
  // has nothing left to wait for.
  io.restart();
  io.poll();
  EXPECT_TRUE(io.stopped());
}

// A Redis sink this daemon let go (it cannot reach it) and another daemon
// then delivers: the probe finds nothing to send, and the sink stands by
// here, not shown failing for as long as the other daemon delivers it.
TEST_F(DispatcherTest, ARedisSinkAnotherDaemonDeliversIsNotShownFailingHere) {
  auto d = UnreachableStream(io_);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));
  EXPECT_EQ(d->Health()[0].state, "open");
  outbox_.elsewhere.insert("events");       // another daemon took its lock
  clock_.Advance(std::chrono::minutes(1));  // past the circuit's pause: a probe
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return d->Health()[0].state == "standby"; })) << d->Health()[0].state;
  EXPECT_FALSE(d->Health()[0].failing);
  // The other daemon lets the sink go with nothing left to send: this one
  // delivers it again, and shows it half-open as it was (its last try
  // failed).
  for (int i = 1; i <= 3; ++i) outbox_.Kill(i, 1, "sent elsewhere, as far as this test goes");
  outbox_.elsewhere.clear();
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return d->Health()[0].state == "half-open"; }))
      << d->Health()[0].state;
  // An event comes: it fails here, and opens again.
  outbox_.Add(4, "events", clock_.Now());
  d->Wake();
  ASSERT_TRUE(RunUntil([&] { return d->Health()[0].state == "open"; }));
  d->Stop();
}

// A reload replaces a Redis sink's worker while the old one's batch is in
// flight (here to a server that never answers): the new worker sends none
// of the events after that batch ahead of it, and once the old one gives
// its batch back (its timeout), the new one is woken and sends them all,
// in order.
TEST_F(DispatcherTest, AReloadedRedisSinkSendsNothingAheadOfTheOldWorkersBatch) {
  const SilentServer silent(io_);
  const int live = testing::PortForLater();
  testing::RedisServer redis;
  redis.Start(dir_.path(), live);
  const auto rules = [](int port) { return WithSink(RedisSink(port, "timeout: 3s, ")); };
  auto first = rules(silent.port());
  auto d = Dispatcher::Create(io_, outbox_, clock_, *first);
  ASSERT_TRUE(d.ok()) << d.status().message();
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  RunAWhile();  // 1..3 sent, unanswered
  for (int i = 4; i <= 5; ++i) outbox_.Add(i, "events", clock_.Now());
  auto second = rules(live);
  auto prepared = (*d)->Prepare(*second);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  (*d)->Commit(std::move(*prepared), *second);
  (*d)->Wake();
  RunAWhile();
  EXPECT_TRUE(redis.Entries("touchpoints").empty());  // 4 and 5 wait for 1..3
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 5; }));
  std::vector<std::string> events;
  for (auto& e : redis.Entries("touchpoints")) events.push_back(e["event"]);
  EXPECT_EQ(events, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})",
                                              R"({"n":4})", R"({"n":5})"}));
  (*d)->Stop();
}

// A reload makes a Redis stream a webhook of the same name while the
// stream's batch is in flight: once the batch is back, the stream's old
// worker lets it go (the webhook delivers nothing in order; other daemons
// still on the old rules may deliver the stream meanwhile).
TEST_F(DispatcherTest, AStreamReloadedIntoAWebhookOfTheSameNameIsLetGo) {
  const SilentServer silent(io_);
  auto first = WithSink(RedisSink(silent.port(), "timeout: 1s, "));
  auto d = Dispatcher::Create(io_, outbox_, clock_, *first);
  ASSERT_TRUE(d.ok()) << d.status().message();
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  RunAWhile();  // 1..3 sent, unanswered
  auto second = WithSink(WebhookSink());
  auto prepared = (*d)->Prepare(*second);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  (*d)->Commit(std::move(*prepared), *second);
  EXPECT_TRUE(outbox_.let_go.empty());                             // its batch still in flight
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));  // the 1 s timeout
  EXPECT_THAT(outbox_.let_go, ::testing::Each(std::string("events")));
  (*d)->Stop();
}

// A reload makes a webhook a Redis stream of the same name while a webhook
// attempt is in flight: the stream's worker sends nothing ahead of it, and
// does not let the stream go while it is in flight (letting go gives up
// the stream's claims, which may include it: another daemon would then
// send it again, uncounted).
TEST_F(DispatcherTest, AWebhookReloadedIntoAStreamOfTheSameNameKeepsItsAttemptInFlight) {
  auto first = WithSink(WebhookSink("concurrency: 1, "));
  auto d = Dispatcher::Create(io_, outbox_, clock_, *first);
  ASSERT_TRUE(d.ok()) << d.status().message();
  hold_answers_ = true;
  outbox_.Add(1, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return held_.size() == 1; }));  // attempted, unanswered
  auto second = WithSink(RedisSink(testing::PortForLater()));
  auto prepared = (*d)->Prepare(*second);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  (*d)->Commit(std::move(*prepared), *second);
  (*d)->Wake();
  RunAWhile();   // the stream's worker finds event 1 in flight: it waits
  (*d)->Stop();  // its worker stops with the webhook attempt still in flight
  EXPECT_TRUE(outbox_.let_go.empty());
  hold_answers_ = false;
  for (auto& answer : held_) answer();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 1; }));
}

// Near its maxmemory Redis refuses the commands it cannot run (out of
// memory) and runs the ones after them: a batch of XADDs goes as one
// transaction, so it is added whole or not at all, never a part (which,
// with a refused command between, would put later events first and send
// them twice); once Redis has room it goes again, in order, each once.
TEST_F(DispatcherTest, ARedisBatchIsAddedWholeOrNotAtAll) {
  const int port = testing::PortForLater();
  testing::RedisServer redis;
  redis.Start(dir_.path(), port);
  auto d = Dispatcher::Create(io_, outbox_, clock_, *WithSink(RedisSink(port)));
  ASSERT_TRUE(d.ok()) << d.status().message();
  outbox_.Add(1, "events", clock_.Now());  // connected, and one in
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 1; }));
  // Room for a third of the next batch (200 events of about 700 bytes).
  const std::int64_t used = redis.UsedMemory();
  ASSERT_GT(used, 0);
  EXPECT_EQ(redis.Command("CONFIG SET maxmemory " + std::to_string(used + 48 * 1024)), "OK");
  const std::string pad(640, 'x');
  for (int i = 2; i <= 201; ++i) {
    outbox_.Add(i, "events", clock_.Now(),
                R"({"n":)" + std::to_string(i) + R"(,"pad":")" + pad + R"("})");
  }
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return (*d)->Health()[0].state == "open"; }));
  const std::size_t after_refusal = redis.Entries("touchpoints").size();
  EXPECT_TRUE(after_refusal == 1 || after_refusal == 201) << after_refusal << " entries";
  EXPECT_THAT((*d)->Health()[0].last_error, ::testing::HasSubstr("OOM"));

  EXPECT_EQ(redis.Command("CONFIG SET maxmemory 0"), "OK");
  clock_.Advance(std::chrono::seconds(2));  // past the circuit's first pause
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.recorded() == 201; }));
  std::vector<int> order;
  for (auto& e : redis.Entries("touchpoints")) {
    order.push_back(std::stoi(e["event"].substr(5)));
  }
  std::vector<int> expected(201);
  for (int i = 0; i < 201; ++i) expected[static_cast<std::size_t>(i)] = i + 1;
  EXPECT_EQ(order, expected);
  (*d)->Stop();
}

}  // namespace
}  // namespace tp
