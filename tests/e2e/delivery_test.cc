// End-to-end delivery: the real touchpointd pushing to a real webhook
// receiver (a Python process that fails on demand, plain or TLS) and to a
// real redis-server, both started here on free loopback ports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "child_process.h"
#include "core/clock.h"
#include "core/time.h"
#include "daemon_process.h"
#include "delivery/signature.h"
#include "redis_server.h"
#include "run_ctl.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::RedisServer;

constexpr std::string_view kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

json PurchaseNow(const std::string& order, const std::string& buyer) {
  return {{"order_id", order},  {"buyer_id", buyer},
          {"product", "daily"}, {"quantity", 1},
          {"amount", 20},       {"purchased_at", FormatRfc3339(SystemClock().Now(), UtcZone())}};
}

// Waits until `done` holds, polling every 20 ms.
bool Eventually(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class Receiver {
 public:
  void Start(const std::string& dir, const std::string& name, std::vector<std::string> extra = {}) {
    record_ = dir + "/" + name + ".jsonl";
    std::vector<std::string> argv{"python3", TP_WEBHOOK_RECEIVER, "--record", record_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_.Start(argv, dir + "/" + name + ".log");
    const std::string line = process_.WaitFor("listening on 127.0.0.1:");
    port_ = std::atoi(line.c_str() + std::string("listening on 127.0.0.1:").size());
    auto client = HttpClient::Create("http://127.0.0.1:" + std::to_string(port_));
    if (client.ok()) control_ = std::move(*client);
  }
  int port() const { return port_; }
  std::string url(bool tls = false) const {
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/hooks";
  }
  void Script(const json& spec) {
    auto r = control_->Request("POST", "/_control/script", spec.dump());
    ASSERT_TRUE(r.ok() && r->status == 204);
  }
  json Requests() const {
    json out = json::array();
    std::ifstream in(record_);
    std::string line;
    // The receiver may be appending while this reads: a last line without its
    // newline is still being written and is left for the next read.
    while (std::getline(in, line) && !in.eof()) out.push_back(json::parse(line));
    return out;
  }
  json WaitForRequests(std::size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    Eventually([&] { return Requests().size() >= n; }, timeout);
    json got = Requests();
    EXPECT_GE(got.size(), n) << got.dump(2);
    return got;
  }

 private:
  ChildProcess process_;
  std::unique_ptr<HttpClient> control_;
  std::string record_;
  int port_ = 0;
};

class DeliveryTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::string Config(const std::string& sinks) {
    testing::WriteFile(Path("crm.secret"), std::string(kSecret) + "\n");
    // One step due a second after the purchase.
    return testing::TestConfig().Step("1s", "soon").Step("1d", "later").Sinks(sinks).Yaml();
  }
  DaemonProcess& StartDaemon(const std::string& sinks) {
    testing::WriteFile(Path("touchpoint.yaml"), Config(sinks));
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }
  void Ingest(const json& purchases) {
    auto [status, body] = daemon_->Call("POST", "/v1/purchases", purchases);
    ASSERT_EQ(status, 200) << body.dump();
  }
  json Touchpoint(const std::string& buyer, const std::string& topic = "soon") {
    auto [status, body] = daemon_->Call("GET", "/v1/buyers/" + buyer);
    for (const auto& t : body["touchpoints"]) {
      if (t["topic"] == topic) return t;
    }
    return nullptr;
  }
  // Waits until the touchpoint's history has a line containing `text`.
  json WaitForHistory(const std::string& buyer, const std::string& text,
                      std::chrono::seconds timeout = std::chrono::seconds(20)) {
    json t;
    Eventually(
        [&] {
          t = Touchpoint(buyer);
          if (t.is_null()) return false;
          for (const auto& h : t["history"]) {
            if (h["reason"].get<std::string>().find(text) != std::string::npos) return true;
          }
          return false;
        },
        timeout);
    EXPECT_THAT(t.dump(), HasSubstr(text));
    return t;
  }
  static std::vector<std::string> Reasons(const json& touchpoint) {
    std::vector<std::string> out;
    for (const auto& h : touchpoint["history"]) out.push_back(h["reason"]);
    return out;
  }
  // Checks a request's signature with our signer over its own headers.
  static void ExpectSigned(const json& request) {
    const std::string id = request["headers"]["webhook-id"];
    const std::string ts = request["headers"]["webhook-timestamp"];
    const std::vector<std::string> keys{*DecodeWebhookSecret(kSecret)};
    EXPECT_EQ(request["headers"]["webhook-signature"],
              SignWebhook(id, std::stoll(ts), request["body"].get<std::string>(), keys));
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(DeliveryTest, WebhookGetsTheSignedEventAndTheHistorySaysSo) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
              "\", secret_file: crm.secret}");
  Ingest(PurchaseNow("o1", "b1"));
  json requests = receiver.WaitForRequests(1);
  ASSERT_EQ(requests.size(), 1u);
  const json& r = requests[0];
  EXPECT_EQ(r["path"], "/hooks");
  EXPECT_EQ(r["headers"]["content-type"], "application/json");
  const json event = json::parse(r["body"].get<std::string>());
  EXPECT_EQ(event["type"], "touchpoint.due");
  EXPECT_EQ(event["data"]["topic"], "soon");
  EXPECT_EQ(r["headers"]["webhook-id"], event["data"]["id"]);
  const auto ts = std::stoll(r["headers"]["webhook-timestamp"].get<std::string>());
  EXPECT_NEAR(static_cast<double>(ts), r["received_at"].get<double>(), 2.0);
  ExpectSigned(r);

  json t = WaitForHistory("b1", "delivered to crm");
  EXPECT_EQ(t["status"], "fired");
  EXPECT_EQ(t["id"], event["data"]["id"]);
  EXPECT_THAT(Reasons(t),
              ::testing::ElementsAre("handed to webhook crm",
                                     ::testing::StartsWith("delivered to crm: HTTP 200 in ")));
}

TEST_F(DeliveryTest, RetriesEveryTransientFailureWithTheSameIdAndFreshSignatures) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  receiver.Script(
      {{"script",
        {{{"status", 500}, {"body", "boom"}},
         {{"status", 429}, {"headers", {{"Retry-After", "1"}}}},
         // A reset on a reused keep-alive connection is retried at
         // once on a new one (the server may have closed it while
         // idle); the second reset is the attempt's verdict.
         {{"reset", true}},
         {{"reset", true}},
         {{"delay_s", 3}},
         {{"status", 503}, {"headers", {{"Retry-After", "Mon, 01 Jan 2024 00:00:00 GMT"}}}},
         {{"status", 204}}}}});
  StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
              "\", secret_file: crm.secret, timeout: 1s, retry: {initial: 1s, max_delay: 1s}}");
  Ingest(PurchaseNow("o1", "b1"));
  json t = WaitForHistory("b1", "delivered to crm", std::chrono::seconds(30));
  EXPECT_EQ(t["status"], "fired");
  const auto reasons = Reasons(t);
  ASSERT_EQ(reasons.size(), 7u) << t.dump(2);
  EXPECT_THAT(reasons[1], HasSubstr("attempt 1 on crm failed: HTTP 500"));
  EXPECT_THAT(reasons[2], HasSubstr("attempt 2 on crm failed: HTTP 429"));
  EXPECT_THAT(reasons[2], HasSubstr("(as Retry-After asked)"));
  EXPECT_THAT(reasons[3], HasSubstr("attempt 3 on crm failed: read: Connection reset by peer"));
  EXPECT_THAT(reasons[4], HasSubstr("attempt 4 on crm failed: timed out after 1s"));
  EXPECT_THAT(reasons[5], HasSubstr("attempt 5 on crm failed: HTTP 503"));
  EXPECT_THAT(reasons[6], HasSubstr("delivered to crm: HTTP 204"));
  EXPECT_THAT(reasons[6], HasSubstr("(attempt 6)"));

  json requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 7u);
  std::set<std::string> timestamps;
  for (const json& r : requests) {
    EXPECT_EQ(r["headers"]["webhook-id"], t["id"]);
    EXPECT_EQ(r["body"], requests[0]["body"]);  // the same bytes every attempt
    ExpectSigned(r);
    timestamps.insert(r["headers"]["webhook-timestamp"].get<std::string>());
  }
  EXPECT_GE(timestamps.size(), 4u);  // signed afresh as time goes by
  // Backoff: the retries were spaced (jitter keeps each within ±25% of 1s).
  for (std::size_t i = 1; i < requests.size(); ++i) {
    const double gap =
        requests[i]["received_at"].get<double>() - requests[i - 1]["received_at"].get<double>();
    const bool immediate = i == 3 || i == 6;  // the reconnect; a Retry-After in the past
    EXPECT_GE(gap, immediate ? 0.0 : 0.7) << "between requests " << i << " and " << i + 1;
  }
}

TEST_F(DeliveryTest, ClientErrorsAndTheLastAttemptDeadLetterThenReplayDelivers) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  receiver.Script(
      {{"script", {{{"status", 410}, {"body", "gone"}}}}, {"default", {{"status", 500}}}});
  StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
              "\", secret_file: crm.secret, retry: {initial: 1s, max_delay: 1s, max_attempts: 2}}");
  Ingest(PurchaseNow("o1", "b1"));
  json t = WaitForHistory("b1", "dead-lettered on crm");
  EXPECT_EQ(t["status"], "dead");
  EXPECT_THAT(t["reason"].get<std::string>(), HasSubstr("HTTP 410"));
  EXPECT_EQ(receiver.Requests().size(), 1u);  // a 410 is not retried

  Ingest(PurchaseNow("o2", "b2"));
  json t2 = WaitForHistory("b2", "after 2 attempts");
  EXPECT_EQ(t2["status"], "dead");

  auto [status, body] = daemon_->Call("GET", "/v1/dead-letters");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(body["dead_letters"].size(), 2u) << body.dump(2);
  const json& first = body["dead_letters"][0];
  EXPECT_EQ(first["sink"], "crm");
  EXPECT_EQ(first["touchpoint_id"], t["id"]);
  EXPECT_EQ(first["attempts"], 1);
  EXPECT_EQ(first["last_error"], "HTTP 410: gone");
  EXPECT_EQ(first["event"]["data"]["id"], t["id"]);
  EXPECT_EQ(body["dead_letters"][1]["attempts"], 2);
  EXPECT_EQ(body["dead_letters"][1]["last_error"], "HTTP 500");
  EXPECT_EQ(daemon_->Call("GET", "/v1/dead-letters?sink=crm&limit=1").second["next_after"],
            first["id"]);
  EXPECT_EQ(daemon_->Call("POST", "/v1/dead-letters/999/replay").first, 404);
  EXPECT_EQ(daemon_->Call("GET", "/v1/dead-letters?sink=nope").first, 400);
  EXPECT_EQ(daemon_->Call("GET", "/v1/dead-letters?limit=0").first, 400);

  // Replay one through the API, the rest through touchpointctl.
  receiver.Script({{"default", {{"status", 200}}}});
  auto replay = daemon_->Call("POST", "/v1/dead-letters/" + first["id"].dump() + "/replay");
  EXPECT_EQ(replay.first, 200);
  EXPECT_EQ(replay.second["replayed"], 1);
  t = WaitForHistory("b1", "delivered to crm");
  EXPECT_EQ(t["status"], "fired");
  auto listed = testing::Ctl({"dead-letters", "list", "--url", daemon_->url()});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr(t2["id"].get<std::string>()));
  EXPECT_THAT(listed.out, HasSubstr("HTTP 500"));
  // Its delivery takes a while (8 s: longer than two touchpointctl runs on
  // a slow machine, within the sink's 10 s timeout): replayed again
  // meanwhile (a retry whose answer was lost), it is found waiting, which
  // is no error.
  receiver.Script({{"default", {{"status", 200}, {"delay_s", 8}}}});
  auto replayed =
      testing::Ctl({"dead-letters", "replay", "--all", "--sink", "crm", "--url", daemon_->url()});
  EXPECT_EQ(replayed.exit_code, 0) << replayed.err;
  EXPECT_THAT(replayed.out, HasSubstr("replayed 1 dead letter"));
  const std::string second = body["dead_letters"][1]["id"].dump();
  auto again = testing::Ctl({"dead-letters", "replay", second, "--url", daemon_->url()});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("replayed 0 dead letters"));
  EXPECT_THAT(again.out, HasSubstr("waiting in their outbox already: " + second));
  t2 = WaitForHistory("b2", "delivered to crm", std::chrono::seconds(40));
  EXPECT_EQ(t2["status"], "fired");
  EXPECT_TRUE(daemon_->Call("GET", "/v1/dead-letters").second["dead_letters"].empty());
}

TEST_F(DeliveryTest, AFailingSinkBacksOffAsAWholeAndDoesNotStarveTheOthers) {
  Receiver good, bad;
  good.Start(dir_.path(), "good");
  bad.Start(dir_.path(), "bad");
  bad.Script({{"default", {{"status", 503}}}});
  StartDaemon("  - {name: good, type: webhook, url: \"" + good.url() +
              "\", secret_file: crm.secret}\n  - {name: bad, type: webhook, url: \"" + bad.url() +
              "\", secret_file: crm.secret, retry: {initial: 1s, max_delay: 1s}}");
  json batch = json::array();
  for (int i = 0; i < 40; ++i) {
    batch.push_back(PurchaseNow("o" + std::to_string(i), "b" + std::to_string(i)));
  }
  Ingest(batch);
  good.WaitForRequests(40, std::chrono::seconds(10));
  // Let the bad sink fail for a while: its circuit must keep it from spinning.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const std::size_t attempts = bad.Requests().size();
  // 40 first attempts would be 40; the circuit opens after 5 failures in a
  // row (16 may be in flight then) and lets one probe through per pause.
  EXPECT_LE(attempts, 30u);
  EXPECT_GE(attempts, 5u);
  EXPECT_THAT(daemon_->log(), HasSubstr("sink bad: failing (5 in a row, last: HTTP 503)"));
  auto [status, health] = daemon_->Call("GET", "/healthz");
  EXPECT_EQ(health["status"], "ok");
  EXPECT_THAT(health["sinks"].dump(), HasSubstr(R"("name":"bad")"));
  EXPECT_THAT(health["sinks"].dump(), HasSubstr(R"("last_error":"HTTP 503")"));

  // Recovery: once the receiver is back, everything drains.
  bad.Script({{"default", {{"status", 200}}}});
  EXPECT_TRUE(Eventually(
      [&] {
        std::set<std::string> ids;
        for (const json& r : bad.Requests()) ids.insert(r["headers"]["webhook-id"]);
        return ids.size() == 40;
      },
      std::chrono::seconds(20)));
  EXPECT_TRUE(
      Eventually([&] { return daemon_->log().find("sink bad: recovered") != std::string::npos; },
                 std::chrono::seconds(5)));
}

TEST_F(DeliveryTest, HttpsVerifiesTheCertificateAgainstTheConfiguredCa) {
  const std::string cert = Path("cert.pem"), key = Path("key.pem");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver", {"--tls", cert, key});
  StartDaemon("  - {name: trusted, type: webhook, url: \"" + receiver.url(true) +
              "\", secret_file: crm.secret, ca_file: cert.pem}\n"
              "  - {name: untrusted, type: webhook, url: \"" +
              receiver.url(true) + "\", secret_file: crm.secret, retry: {initial: 1h}}");
  Ingest(PurchaseNow("o1", "b1"));
  json t = WaitForHistory("b1", "delivered to trusted");
  t = WaitForHistory("b1", "attempt 1 on untrusted failed");
  EXPECT_THAT(t.dump(), HasSubstr("TLS handshake: certificate verify failed"));
  json requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);  // only over the verified connection
  ExpectSigned(requests[0]);
}

TEST_F(DeliveryTest, KilledDuringDeliveryRedeliversWithTheSameWebhookId) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  receiver.Script({{"script", {{{"delay_s", 30}}}}});  // the first request hangs
  DaemonProcess& d = StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
                                 "\", secret_file: crm.secret, timeout: 1m}");
  Ingest(PurchaseNow("o1", "b1"));
  json first = receiver.WaitForRequests(1);
  d.Kill9();
  ASSERT_TRUE(d.Start());
  json requests = receiver.WaitForRequests(2);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1]["headers"]["webhook-id"], first[0]["headers"]["webhook-id"]);
  EXPECT_EQ(requests[1]["body"], first[0]["body"]);
  ExpectSigned(requests[1]);
  json t = WaitForHistory("b1", "delivered to crm");
  EXPECT_EQ(t["status"], "fired");
}

TEST_F(DeliveryTest, SigtermLetsTheAttemptInFlightFinishAndRecordsIt) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  receiver.Script({{"script", {{{"delay_s", 1}, {"status", 200}}}}});
  DaemonProcess& d = StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
                                 "\", secret_file: crm.secret}");
  Ingest(PurchaseNow("o1", "b1"));
  receiver.WaitForRequests(1);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
  ASSERT_TRUE(d.Start());
  json t = WaitForHistory("b1", "delivered to crm");
  EXPECT_EQ(t["status"], "fired");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(receiver.Requests().size(), 1u);  // recorded before exit: not sent again
}

TEST_F(DeliveryTest, TwoSinksGetTheTouchpointIndependently) {
  Receiver a, b;
  a.Start(dir_.path(), "a");
  b.Start(dir_.path(), "b");
  b.Script({{"script", {{{"status", 500}}}}});
  StartDaemon(
      "  - {name: outbox, type: queue}\n"
      "  - {name: a, type: webhook, url: \"" +
      a.url() +
      "\", secret_file: crm.secret}\n"
      "  - {name: b, type: webhook, url: \"" +
      b.url() + "\", secret_file: crm.secret, retry: {initial: 1s, max_delay: 1s}}");
  Ingest(PurchaseNow("o1", "b1"));
  json t = WaitForHistory("b1", "delivered to b");
  t = WaitForHistory("b1", "delivered to a");
  EXPECT_EQ(t["status"], "fired");
  EXPECT_EQ(Reasons(t)[0], "queued on outbox; handed to webhook a; handed to webhook b");
  EXPECT_EQ(a.Requests().size(), 1u);
  EXPECT_EQ(b.Requests().size(), 2u);
  auto [status, leased] = daemon_->Call("POST", "/v1/queues/outbox/lease", {{"max", 10}});
  ASSERT_EQ(leased["messages"].size(), 1u);
  EXPECT_EQ(leased["messages"][0]["event"]["data"]["id"], t["id"]);
}

TEST_F(DeliveryTest, TheOfficialStandardWebhooksLibraryVerifiesOurSignatures) {
  Receiver receiver;
  receiver.Start(dir_.path(), "receiver");
  StartDaemon("  - {name: crm, type: webhook, url: \"" + receiver.url() +
              "\", secret_file: crm.secret}");
  // Mid-rotation: two secrets, so every request carries two signatures.
  testing::WriteFile(Path("crm.secret"),
                     std::string(kSecret) + "\nwhsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=\n");
  daemon_->Kill9();  // secrets are read at start (and reload)
  ASSERT_TRUE(daemon_->Start());
  Ingest(json::array({PurchaseNow("o1", "b1"), PurchaseNow("o2", "b2"), PurchaseNow("o3", "b3")}));
  json requests = receiver.WaitForRequests(3);
  EXPECT_THAT(requests[0]["headers"]["webhook-signature"].get<std::string>(), HasSubstr(" v1,"));
  const std::string cmd = "node " + std::string(TP_INTEROP_DIR) + "/verify_signatures.mjs " +
                          Path("crm.secret") + " " + Path("receiver.jsonl") + " > " +
                          Path("node.out") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string out = testing::ReadFile(Path("node.out"));
  ASSERT_EQ(rc, 0) << out << "\n(the test command installs the package: npm ci --prefix "
                   << TP_INTEROP_DIR << ")";
  EXPECT_THAT(out, HasSubstr("verified 3 requests with 2 secrets"));
  EXPECT_THAT(out, HasSubstr("rejected a tampered body"));
}

// The touchpoint ids of the buyers' "soon" steps, in the order they fired:
// by fire time, then (for those one pass fired together, which a loaded
// machine makes common) by due time. Compared as instants, not as text:
// "10:00:05Z" sorts after "10:00:05.120Z".
std::vector<std::string> FireOrder(DaemonProcess& d, int buyers) {
  std::vector<std::tuple<tp::Instant, tp::Instant, std::string>> fired;
  for (int i = 0; i < buyers; ++i) {
    auto [status, body] = d.Call("GET", "/v1/buyers/b" + std::to_string(i));
    for (const auto& t : body["touchpoints"]) {
      if (t["topic"] != "soon" || !t["fire_at"].is_string()) continue;
      const auto fire_at = tp::ParseRfc3339(t["fire_at"].get<std::string>());
      const auto due_at = tp::ParseRfc3339(t["due_at"].get<std::string>());
      EXPECT_TRUE(fire_at && due_at) << t.dump();
      if (fire_at && due_at) fired.emplace_back(*fire_at, *due_at, t["id"]);
    }
  }
  std::sort(fired.begin(), fired.end());
  std::vector<std::string> ids;
  for (auto& f : fired) ids.push_back(std::get<2>(f));
  return ids;
}

TEST_F(DeliveryTest, RedisStreamGetsEveryEventInFireOrder) {
  const int port = testing::PortForLater();
  RedisServer redis;
  redis.Start(dir_.path(), port);
  StartDaemon("  - {name: events, type: redis, url: \"redis://127.0.0.1:" + std::to_string(port) +
              "/0\", stream: tp-events, maxlen: 100000}");
  for (int i = 0; i < 5; ++i) {
    Ingest(PurchaseNow("o" + std::to_string(i), "b" + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  std::vector<std::map<std::string, std::string>> entries;
  EXPECT_TRUE(Eventually([&] { return (entries = redis.Entries("tp-events")).size() >= 5; },
                         std::chrono::seconds(10)));
  ASSERT_EQ(entries.size(), 5u);
  std::vector<std::string> ids;
  for (auto& e : entries) {
    EXPECT_EQ(e["type"], "touchpoint.due");
    const json event = json::parse(e["event"]);
    EXPECT_EQ(event["data"]["id"], e["id"]);
    ids.push_back(e["id"]);
  }
  EXPECT_EQ(ids, FireOrder(*daemon_, 5));
  json t = WaitForHistory("b0", "added to stream tp-events on events as ");
  EXPECT_EQ(t["status"], "fired");
  EXPECT_EQ(redis.ReadAsGroup("tp-events"), ids);
}

TEST_F(DeliveryTest, RedisPasswordAndDatabaseFromTheUrl) {
  const int port = testing::PortForLater();
  RedisServer redis;
  redis.Start(dir_.path(), port, "s3cret");
  StartDaemon(
      "  - {name: events, type: redis, url: \"redis://:s3cret@127.0.0.1:" + std::to_string(port) +
      "/2\"}\n  - {name: wrong, type: redis, url: "
      "\"redis://:nope@127.0.0.1:" +
      std::to_string(port) + "/0\"}");
  Ingest(PurchaseNow("o0", "b0"));
  EXPECT_TRUE(Eventually([&] { return redis.Entries("touchpoints", 2).size() == 1; },
                         std::chrono::seconds(10)));
  EXPECT_TRUE(redis.Entries("touchpoints", 0).empty());
  EXPECT_TRUE(
      Eventually([&] { return daemon_->log().find("sink wrong: failing") != std::string::npos; },
                 std::chrono::seconds(5)));
  EXPECT_THAT(daemon_->log(), HasSubstr("redis refused the login"));
}

TEST_F(DeliveryTest, WhileRedisIsDownEventsWaitDurablyThenFlowInOrder) {
  const int port = testing::PortForLater();
  DaemonProcess& d = StartDaemon(
      "  - {name: events, type: redis, url: \"redis://127.0.0.1:" + std::to_string(port) + "/0\"}");
  for (int i = 0; i < 4; ++i) {
    Ingest(PurchaseNow("o" + std::to_string(i), "b" + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  EXPECT_TRUE(Eventually([&] { return FireOrder(d, 4).size() == 4; }, std::chrono::seconds(10)));
  EXPECT_TRUE(Eventually([&] { return d.log().find("sink events: failing") != std::string::npos; },
                         std::chrono::seconds(5)));
  auto [status, health] = d.Call("GET", "/healthz");
  EXPECT_THAT(health["sinks"].dump(), HasSubstr("connect 127.0.0.1:" + std::to_string(port)));
  // Down across a crash too: the outbox is in the database.
  d.Kill9();
  ASSERT_TRUE(d.Start());
  for (int i = 4; i < 6; ++i) {
    Ingest(PurchaseNow("o" + std::to_string(i), "b" + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  EXPECT_TRUE(Eventually([&] { return FireOrder(d, 6).size() == 6; }, std::chrono::seconds(10)));

  RedisServer redis;
  redis.Start(dir_.path(), port);
  std::vector<std::map<std::string, std::string>> entries;
  EXPECT_TRUE(Eventually([&] { return (entries = redis.Entries("touchpoints")).size() >= 6; },
                         std::chrono::seconds(40)));
  std::vector<std::string> ids;
  for (auto& e : entries) ids.push_back(e["id"]);
  EXPECT_EQ(ids, FireOrder(d, 6));
  EXPECT_TRUE(
      Eventually([&] { return d.log().find("sink events: recovered") != std::string::npos; },
                 std::chrono::seconds(5)));
}

}  // namespace
}  // namespace tp

namespace tp {
namespace {

TEST_F(DeliveryTest, ReloadRotatesTheSecretAndAddsASinkWithoutResending) {
  Receiver crm, audit;
  crm.Start(dir_.path(), "crm");
  audit.Start(dir_.path(), "audit");
  DaemonProcess& d = StartDaemon("  - {name: crm, type: webhook, url: \"" + crm.url() +
                                 "\", secret_file: crm.secret}");
  Ingest(PurchaseNow("o1", "b1"));
  ASSERT_EQ(crm.WaitForRequests(1).size(), 1u);

  constexpr std::string_view kNewSecret = "whsec_c2VjcmV0LWFmdGVyLXRoZS1yb3RhdGlvbg==";
  testing::WriteFile(Path("touchpoint.yaml"),
                     Config("  - {name: crm, type: webhook, url: \"" + crm.url() +
                            "\", secret_file: crm.secret}\n"
                            "  - {name: audit, type: webhook, url: \"" +
                            audit.url() + "\", secret_file: crm.secret}"));
  testing::WriteFile(Path("crm.secret"), std::string(kNewSecret) + "\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] { return d.log().find("reloaded ") != std::string::npos; },
                         std::chrono::seconds(10)))
      << d.log();

  Ingest(PurchaseNow("o2", "b2"));
  const json to_crm = crm.WaitForRequests(2);
  const json to_audit = audit.WaitForRequests(1);
  ASSERT_EQ(to_crm.size(), 2u) << "o1 must not be sent again";
  ASSERT_EQ(to_audit.size(), 1u);
  const std::vector<std::string> keys{*DecodeWebhookSecret(kNewSecret)};
  for (const json& r : {to_crm[1], to_audit[0]}) {
    const std::string id = r["headers"]["webhook-id"];
    const std::string ts = r["headers"]["webhook-timestamp"];
    const std::string body = r["body"];
    EXPECT_THAT(body, HasSubstr("\"order_id\":\"o2\""));
    EXPECT_EQ(r["headers"]["webhook-signature"], SignWebhook(id, std::stoll(ts), body, keys));
  }
}

}  // namespace
}  // namespace tp
