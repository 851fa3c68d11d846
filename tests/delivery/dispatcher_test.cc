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
#include <boost/asio/ip/tcp.hpp>
#include <deque>
#include <fstream>
#include <functional>
#include <map>

#include "core/text.h"
#include "delivery/fake_outbox.h"
#include "e2e/redis_server.h"
#include "harness.h"
#include "http/server.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::FakeOutbox;
using ::testing::HasSubstr;

// A server on loopback whose connections complete, and are never read nor
// answered: a Redis batch sent to it stays in flight until its timeout.
struct SilentServer {
  explicit SilentServer(boost::asio::io_context& io)
      : acceptor(io,
                 boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    acceptor.listen();
  }
  int port() const { return acceptor.local_endpoint().port(); }
  boost::asio::ip::tcp::acceptor acceptor;
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
      std::string body = status == 200 ? "ok" : "not now";
      if (!answer_bodies_.empty()) {
        body = std::move(answer_bodies_.front());
        answer_bodies_.pop_front();
      }
      if (hold_answers_) {
        held_.push_back([respond = std::move(respond), status, body = std::move(body)]() mutable {
          respond(HttpResponse{status, std::move(body)});
        });
        return;
      }
      respond(HttpResponse{status, std::move(body)});
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

  // Rules with one sink, `sink` (a YAML flow mapping), and one cadence.
  static std::shared_ptr<const Rules> WithSink(const std::string& sink) {
    return testing::MustLoad(
        "version: 1\nproducts: {daily: {supply_days: 15}}\nsinks:\n  - " + sink +
        "\ncadences:\n  - name: trust\n    steps: [{after: 1d, topic: hello}]\n");
  }
  // A Redis sink "events" at 127.0.0.1:`port`, with `keys` ("timeout: 1s, ").
  static std::string RedisSink(int port, const std::string& keys = "") {
    return "{name: events, type: redis, " + keys +
           "url: \"redis://127.0.0.1:" + std::to_string(port) + "/0\"}";
  }
  // A webhook sink "events" at the receiver, with `keys`; its secret written.
  std::string WebhookSink(const std::string& keys = "") {
    std::ofstream(dir_.path() + "/events.secret") << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
    return "{name: events, type: webhook, " + keys + "url: \"http://" + receiver_.LocalAddress() +
           "/hook\", secret_file: \"" + dir_.path() + "/events.secret\"}";
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
  std::deque<int> answers_;                // the receiver's statuses, in turn; then 200
  std::deque<std::string> answer_bodies_;  // its bodies, in turn; then "ok" or "not now"
  std::vector<std::string> bodies_;
  bool hold_answers_ = false;                // the receiver answers when a test says so
  std::vector<std::function<void()>> held_;  // its answers held, to send
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
  const auto rules = WithSink(RedisSink(testing::PortForLater()));
  auto d = Dispatcher::Create(io_, outbox_, clock_, *rules);
  ASSERT_TRUE(d.ok()) << d.status().message();
  outbox_.let_go_failures = 1;
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return outbox_.let_go.size() == 2; }));  // within kStoreRetry
  EXPECT_EQ(outbox_.let_go_failures, 0);
  io_.restart();
  io_.run_for(std::chrono::milliseconds(1500));  // past another retry's time (kStoreRetry)
  EXPECT_EQ(outbox_.let_go.size(), 2u);
  (*d)->Stop();
}

// Letting a Redis sink go fails otherwise than by the store being away:
// not tried again each second (it would fail each time).
TEST_F(DispatcherTest, ARedisSinkWhoseLetGoTheStoreRefusesIsNotTriedEachSecond) {
  const auto rules = WithSink(RedisSink(testing::PortForLater()));
  auto d = Dispatcher::Create(io_, outbox_, clock_, *rules);
  ASSERT_TRUE(d.ok()) << d.status().message();
  outbox_.let_go_failures = 100;
  outbox_.let_go_error = Status::Error("permission denied for function pg_advisory_unlock");
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));
  io_.restart();
  io_.run_for(std::chrono::milliseconds(1500));  // past a retry's time (kStoreRetry)
  EXPECT_EQ(outbox_.let_go.size(), 1u);
  (*d)->Stop();
}

// A stream's worker replaced at a reload while its let-go waits to be
// tried again (the store away): once the daemon stops, its loop does not
// wait for that try.
TEST_F(DispatcherTest, AStoppingDaemonDoesNotWaitToLetGoAReplacedStreamAgain) {
  boost::asio::io_context io;  // the dispatcher's alone: it stops with its work
  const auto rules = WithSink(RedisSink(testing::PortForLater()));
  auto d = Dispatcher::Create(io, outbox_, clock_, *rules);
  ASSERT_TRUE(d.ok()) << d.status().message();
  outbox_.let_go_failures = 100;
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (outbox_.let_go.empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(outbox_.let_go.empty());
  const auto without = WithSink("{name: q, type: queue}");
  auto prepared = (*d)->Prepare(*without);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  (*d)->Commit(std::move(*prepared), *without);
  (*d)->Stop();
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
  const auto rules = WithSink(RedisSink(testing::PortForLater()));
  auto d = Dispatcher::Create(io_, outbox_, clock_, *rules);
  ASSERT_TRUE(d.ok()) << d.status().message();
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return !outbox_.let_go.empty(); }));
  EXPECT_EQ((*d)->Health()[0].state, "open");
  outbox_.elsewhere.insert("events");       // another daemon took its lock
  clock_.Advance(std::chrono::minutes(1));  // past the circuit's pause: a probe
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return (*d)->Health()[0].state == "standby"; }))
      << (*d)->Health()[0].state;
  EXPECT_FALSE((*d)->Health()[0].failing);
  // The other daemon lets the sink go with nothing left to send: this one
  // delivers it again, and shows it half-open as it was (its last try
  // failed).
  for (int i = 1; i <= 3; ++i) outbox_.Kill(i, 1, "sent elsewhere, as far as this test goes");
  outbox_.elsewhere.clear();
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return (*d)->Health()[0].state == "half-open"; }))
      << (*d)->Health()[0].state;
  // An event comes: it fails here, and opens again.
  outbox_.Add(4, "events", clock_.Now());
  (*d)->Wake();
  ASSERT_TRUE(RunUntil([&] { return (*d)->Health()[0].state == "open"; }));
  (*d)->Stop();
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

}  // namespace
}  // namespace tp
