// The fixture of the dispatcher's tests: the dispatcher over a fake outbox
// (OutboxStore) on a fake clock, delivering to a real HTTP server on
// loopback in the same io_context. The clock starts a year ahead of the
// wall clock, so the workers' timers never fire during a test: the test
// moves the clock and wakes the dispatcher, and every retry, dead letter
// and circuit decision follows the fake time alone.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "delivery/dispatcher.h"
#include "delivery/fake_outbox.h"
#include "e2e/child_process.h"
#include "harness.h"
#include "http/server.h"
#include "temp_dir.h"

namespace tp::testing {

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

  // A dispatcher on `io` whose one sink is a Redis stream nobody listens
  // on, three of its events due, woken: its circuit opens, and it lets the
  // stream go once nothing of it is in flight. Null (and failed) if it
  // cannot be made.
  std::unique_ptr<Dispatcher> UnreachableStream(boost::asio::io_context& io) {
    rules_ = WithSink(RedisSink(PortForLater()));
    auto d = Dispatcher::Create(io, outbox_, clock_, *rules_);
    EXPECT_TRUE(d.ok()) << d.status().message();
    if (!d.ok()) return nullptr;
    for (int i = 1; i <= 3; ++i) outbox_.Add(i, "events", clock_.Now());
    (*d)->Wake();
    return std::move(*d);
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

}  // namespace tp::testing
