// End-to-end: what a careless or hostile client sends a real touchpointd,
// over real HTTP. Each answer must be a 4xx naming what is wrong, nothing
// may be recorded from a refused request, and the daemon must stay up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/clock.h"
#include "daemon_process.h"
#include "harness.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string AgoText(std::chrono::milliseconds ago = {}) {
  return FormatRfc3339(SystemClock().Now() - ago, UtcZone());
}

json PurchaseBody(const std::string& order, const std::string& buyer,
                  const std::string& at = AgoText()) {
  return {{"order_id", order}, {"buyer_id", buyer}, {"product", "daily"},
          {"quantity", 2},     {"amount", 240},     {"purchased_at", at}};
}

// A purchase body with one field's raw JSON text replaced.
std::string WithRaw(const std::string& field, const std::string& raw) {
  json p = PurchaseBody("raw", "b1");
  p[field] = "@@";
  std::string body = p.dump();
  body.replace(body.find("\"@@\""), 4, raw);
  return body;
}

class InputTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  DaemonProcess& Start(std::string_view config = testing::kBriefConfig) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }

  // POSTs `body` as it is; the status and parsed answer.
  std::pair<int, json> Post(const std::string& target, const std::string& body) {
    auto r = daemon_->http().Request("POST", target, body);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {0, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  std::string Metrics() {
    auto r = daemon_->http().Request("GET", "/metrics");
    return r.ok() ? r->body : "";
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(InputTest, NumbersBeyondTheDoubleRangeAre400NotErrors) {
  DaemonProcess& d = Start();
  for (const auto& [field, raw] : std::vector<std::pair<std::string, std::string>>{
           {"amount", "1e400"}, {"quantity", "-1e400"}, {"amount", std::string(400, '7')}}) {
    auto [status, body] = Post("/v1/purchases", WithRaw(field, raw));
    EXPECT_EQ(status, 400) << body;
    EXPECT_EQ(body["field"], field) << body;
    EXPECT_EQ(body["index"], 0);
    EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("a number out of range"));
  }
  auto [status, body] = Post("/v1/queues/outbox/lease", R"({"visibility_s": 1e400})");
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(body["field"], "visibility_s");
  std::tie(status, body) = Post("/v1/queues/outbox/ack", R"({"receipts": [1e999]})");
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(body["field"], "receipts");
  // Counted as invalid requests, which no alert fires on, and never as errors.
  const std::string metrics = Metrics();
  EXPECT_EQ(testing::Sample(metrics, R"(touchpoint_ingest_requests_total{outcome="invalid"})"), 3);
  EXPECT_EQ(testing::Sample(metrics, R"(touchpoint_ingest_requests_total{outcome="error"})"), 0);
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(InputTest, DeepNestingIs400AndTheDaemonStaysUp) {
  DaemonProcess& d = Start();
  // About 390 KB of attributes nested 65,000 deep killed the daemon.
  const std::string deep = std::string(65'000, '[') + std::string(65'000, ']');
  auto [status, body] = Post("/v1/purchases", WithRaw("attributes", R"({"a":)" + deep + "}"));
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["field"], "attributes");
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("nested deeper than 32 levels"));
  std::tie(status, body) = Post("/v1/queues/outbox/ack", R"({"receipts":)" + deep + "}");
  EXPECT_EQ(status, 400);
  std::tie(status, body) = Post("/v1/purchases", deep);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
  EXPECT_EQ(d.Call("GET", "/v1/buyers/b1").first, 404);
}

TEST_F(InputTest, DuplicateKeysNulBytesAndBadIdsAre400) {
  DaemonProcess& d = Start();
  std::string body = PurchaseBody("o1", "b1").dump();
  body.insert(1, R"("amount": 1, )");
  auto [status, answer] = Post("/v1/purchases", body);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(answer["field"], "amount");
  EXPECT_THAT(answer["error"].get<std::string>(), HasSubstr("duplicate key 'amount'"));

  std::tie(status, answer) =
      Post("/v1/purchases", PurchaseBody("o1", "b1").dump() + std::string("\0{]]garbage", 11));
  EXPECT_EQ(status, 400);
  EXPECT_THAT(answer["error"].get<std::string>(), HasSubstr("NUL byte"));

  std::tie(status, answer) = Post("/v1/purchases", PurchaseBody("a\u0001b", "b1").dump());
  EXPECT_EQ(status, 400);
  EXPECT_EQ(answer["field"], "order_id");
  for (const char* path :
       {"/v1/buyers/%ff/opt-out", "/v1/buyers/a%00b/opt-out", "/v1/buyers/a%0a"}) {
    const bool post = std::string_view(path).ends_with("opt-out");
    auto r = d.Call(post ? "POST" : "GET", path);
    EXPECT_EQ(r.first, 400) << path;
    EXPECT_EQ(r.second["field"], "buyer_id") << path;
  }
  // None of it created a buyer.
  EXPECT_EQ(d.Call("GET", "/v1/buyers/b1").first, 404);
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(InputTest, CodingsTheDaemonDoesNotDecodeAreRefused) {
  DaemonProcess& d = Start();
  const std::string body = PurchaseBody("o1", "b1").dump();
  const std::string head =
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  std::string answer =
      testing::RawExchange(d.address(), head + "Transfer-Encoding: gzip\r\n\r\n" + body);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(answer, HasSubstr("Transfer-Encoding must end with chunked"));
  answer =
      testing::RawExchange(d.address(), head + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 501"));
  answer = testing::RawExchange(d.address(), head + "Content-Encoding: gzip\r\nContent-Length: " +
                                                 std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 415"));
  EXPECT_THAT(answer, HasSubstr("Accept-Encoding: identity"));
  // Chunked alone is fine.
  answer = testing::RawExchange(
      d.address(), head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + ([&] {
                     char size[16];
                     std::snprintf(size, sizeof size, "%zx", body.size());
                     return std::string(size);
                   })() +
                       "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/b1").first, 200);
}

// A chunk's size line that never ends is refused once it passes the read
// buffer, not buffered for as long as the client sends it.
TEST_F(InputTest, AChunkSizeLineThatNeverEndsIsA400) {
  DaemonProcess& d = Start();
  const std::string answer = testing::RawExchange(
      d.address(),
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n1;" +
          std::string(1 << 20, 'a'));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(answer, HasSubstr("a chunk's size line or the trailers exceed 81920 bytes"));
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

// A client that sends its whole body before it reads (as curl does: a
// failed send ends its request) gets to send it, then reads the 413: the
// daemon reads and drops the rest before it closes, where closing at once
// would reset the connection under the client's send.
TEST_F(InputTest, AClientStillSendingItsBodyReadsThe413) {
  DaemonProcess& d = Start();
  const int fd = testing::RawConnect(d.address());
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string request =
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 67108864\r\n\r\n" +
      std::string(48 << 20, ' ');
  std::size_t sent = 0;
  int send_error = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      send_error = errno;
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  const std::string answer = testing::ReadUntilClosed(fd);
  EXPECT_EQ(sent, request.size()) << std::strerror(send_error);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(answer, HasSubstr("request body exceeds"));
}

// Only purchases and events take bodies of a megabyte or more (parsed off
// the loop): another route's is refused on its length before it is read,
// or, chunked, once it passes the limit.
TEST_F(InputTest, OtherRoutesTakeBodiesOfAMegabyteAtMost) {
  DaemonProcess& d = Start();
  const std::string head =
      "POST /v1/queues/outbox/ack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\n";
  std::string answer =
      testing::RawExchange(d.address(), head + "Content-Length: 2000000\r\n\r\n{\"receipts\":[");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(answer, HasSubstr("request body exceeds 1048576 bytes"));
  answer = testing::RawExchange(d.address(), head + "Transfer-Encoding: chunked\r\n\r\n180000\r\n" +
                                                 std::string(0x180000, ' ') + "\r\n0\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 413"));
  // At the limit, the body reaches the route.
  std::string body = "{\"receipts\":[]}";
  body.insert(1, std::string((1U << 20) - body.size(), ' '));
  auto [status, acked] = Post("/v1/queues/outbox/ack", body);
  EXPECT_EQ(status, 200) << acked;
  EXPECT_EQ(acked["acked"], 0);
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

// The headers a browser sends reach the gate: another site's page cannot
// opt a buyer out of a daemon on loopback. (The status page behind a proxy,
// by a name the daemon allows, can.)
TEST_F(InputTest, AnOptOutFromAnotherSitesPageIsRefused) {
  DaemonProcess& d =
      Start(std::string(testing::kBriefConfig) + "http: {allowed_hosts: [ops.internal]}\n");
  const std::string head = "POST /v1/buyers/lin/opt-out HTTP/1.1\r\nHost: " + d.address() +
                           "\r\nContent-Length: 0\r\nConnection: close\r\n";
  std::string answer =
      testing::RawExchange(d.address(), head + "Sec-Fetch-Site: cross-site\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 403"));
  answer = testing::RawExchange(d.address(), head + "Origin: http://evil.example\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 403"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/lin").first, 404);  // nothing recorded
  answer = testing::RawExchange(d.address(), head +
                                                 "Origin: http://ops.internal\r\n"
                                                 "X-Forwarded-Host: ops.internal\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/lin").second["opted_out"], true);
}

// curl asks before it sends a body over 1 KiB (Expect: 100-continue) and
// waits a second for the answer: the daemon tells it to go on at once.
TEST_F(InputTest, AClientThatAsksBeforeSendingItsBodyIsToldToGoOn) {
  DaemonProcess& d = Start();
  const int fd = testing::RawConnect(d.address());
  ASSERT_GE(fd, 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string body = PurchaseBody("o1", "b1").dump();
  const std::string head =
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nConnection: close\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  char buf[4096];
  std::string answer;
  while (answer.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 100 Continue\r\n"));
  ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
  answer += testing::ReadUntilClosed(fd);
  EXPECT_THAT(answer, HasSubstr("\r\n\r\nHTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/b1").first, 200);
}

TEST_F(InputTest, HeadAnswersWithoutABody) {
  DaemonProcess& d = Start();
  const std::string answer = testing::RawExchange(
      d.address(), "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: "));
  EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), "") << answer;
}

TEST_F(InputTest, DatesAndQuantitiesOutsideTheBoundsAre400) {
  DaemonProcess& d = Start();
  for (const char* at : {"9999-05-15T10:00:00+08:00", "1900-01-01T00:00:00Z"}) {
    auto [status, body] = d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", at));
    EXPECT_EQ(status, 400) << at;
    EXPECT_EQ(body["field"], "purchased_at");
  }
  json p = PurchaseBody("o1", "b1");
  p["quantity"] = 143'165'577;  // x 15 days wrapped past 2^31 days and skipped the reminder
  auto [status, body] = d.Call("POST", "/v1/purchases", p);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["field"], "quantity");
  p["quantity"] = 2'433;  // 36,495 days: the most of daily lenses
  std::tie(status, body) = d.Call("POST", "/v1/purchases", p);
  ASSERT_EQ(status, 200) << body;
  std::tie(status, body) = d.Call("GET", "/v1/buyers/b1");
  for (const auto& t : body["touchpoints"]) {
    EXPECT_THAT(t["due_at"].get<std::string>(), StartsWith("2")) << t;  // a year 2xxx
    EXPECT_EQ(t["status"], "pending") << t;
  }
}

TEST_F(InputTest, AnOrderTwiceInOneRequestAndTheDefaultZoneSpeltOut) {
  DaemonProcess& d = Start();
  json changed = PurchaseBody("o1", "lin");
  changed["amount"] = 250;
  auto [status, body] =
      d.Call("POST", "/v1/purchases", json::array({PurchaseBody("o1", "lin"), changed}));
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(body["index"], 1);
  EXPECT_EQ(body["field"], "amount");
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("is also item 0 of this request"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/lin").first, 404);  // nothing recorded

  const json first = PurchaseBody("o2", "lin");
  ASSERT_EQ(d.Call("POST", "/v1/purchases", first).first, 200);
  json spelt = first;
  spelt["timezone"] = "Asia/Shanghai";  // the config's default, which it was recorded in
  std::tie(status, body) = d.Call("POST", "/v1/purchases", spelt);
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body["duplicates"], 1);
}

// A body of a megabyte or more is parsed away from the loop: it is
// recorded, or refused naming its item, all the same.
TEST_F(InputTest, ALargeBodyIsCheckedAndRecordedAsASmallOne) {
  DaemonProcess& d = Start();
  json many = json::array();
  for (int i = 0; i < 1'000; ++i) {
    json p = PurchaseBody("big" + std::to_string(i), "buyer" + std::to_string(i));
    p["attributes"] = {{"note", std::string(1'100, 'x')}};
    many.push_back(std::move(p));
  }
  json bad = many;
  bad[999].erase("buyer_id");
  ASSERT_GE(bad.dump().size(), 1024U * 1024U);
  auto [status, body] = Post("/v1/purchases", bad.dump());
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(body["index"], 999);
  EXPECT_EQ(body["field"], "buyer_id");
  EXPECT_EQ(d.Call("GET", "/v1/buyers/buyer0").first, 404);  // nothing recorded

  std::tie(status, body) = Post("/v1/purchases", many.dump());
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 1'000);
  EXPECT_EQ(d.Call("GET", "/v1/buyers/buyer999").first, 200);
  // The rest of the answer as for any request, and the daemon unharmed.
  EXPECT_EQ(body["results"][999]["order_id"], "big999");
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(InputTest, AnOldOrderReportsItsStepsSkippedNotPlanned) {
  DaemonProcess& d = Start();
  auto [status, body] = d.Call("POST", "/v1/purchases",
                               PurchaseBody("old", "lin", AgoText(std::chrono::hours(24 * 60))));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["touchpoints_planned"], 0);
  EXPECT_EQ(body["touchpoints_skipped"], 6);
  EXPECT_EQ(body["results"][0]["skipped"], 6);
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  for (const auto& t : body["touchpoints"]) {
    EXPECT_EQ(t["status"], "skipped");
    EXPECT_THAT(t["reason"].get<std::string>(), HasSubstr("more than misfire_grace 24h"));
  }
  const std::string metrics = Metrics();
  EXPECT_LE(testing::Sample(metrics, R"(touchpoint_touchpoints_planned_total{cadence="trust"})"),
            0);
  EXPECT_EQ(testing::Sample(metrics, R"(touchpoint_touchpoints_skipped_total{cadence="trust"})"),
            4);
}

TEST_F(InputTest, AnOrderRecordedAfterItsStepWasDueIsNotLateFiring) {
  DaemonProcess& d = Start(testing::TestConfig().Tier("{name: novice}").Step("1s", "soon").Yaml());

  // Due 30 minutes ago; it can fire only now that the order arrived.
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "lin", AgoText(std::chrono::minutes(30))))
          .first,
      200);
  std::string metrics;
  for (int i = 0; i < 500; ++i) {
    metrics = Metrics();
    if (testing::Sample(metrics, "touchpoint_fire_lateness_seconds_count") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(testing::Sample(metrics, "touchpoint_fire_lateness_seconds_count"), 1) << metrics;
  EXPECT_LT(testing::Sample(metrics, "touchpoint_fire_lateness_seconds_sum"), 5.0);
}

TEST_F(InputTest, ReplayingDeadLettersNeedsToSayWhich) {
  Start();
  auto [status, body] = Post("/v1/dead-letters/replay", "");
  EXPECT_EQ(status, 400);
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("say which dead letters"));
  std::tie(status, body) = Post("/v1/dead-letters/replay", "{}");
  EXPECT_EQ(status, 400);
  std::tie(status, body) = Post("/v1/dead-letters/replay", R"({"all": false})");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["field"], "all");
  std::tie(status, body) = Post("/v1/dead-letters/replay", R"({"all": true})");
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body["replayed"], 0);
  // Both: that sink's, which must be one.
  std::tie(status, body) = Post("/v1/dead-letters/replay", R"({"all": true, "sink": "nope"})");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["field"], "sink") << body;
}

// Ingest let control characters into buyer ids once: such a buyer can still
// be looked up and opted out, though no new one can be made.
TEST_F(InputTest, ABuyerRecordedBeforeIdsWereCheckedCanStillBeReached) {
  DaemonProcess& d = Start();
  ASSERT_EQ(Post("/v1/purchases", json::array({PurchaseBody("o1", "old")}).dump()).first, 200);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(Path("tp.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    EXPECT_EQ(sqlite3_exec(db, "UPDATE buyers SET buyer_id = 'old' || char(9) || 'id'", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto [status, body] = d.Call("GET", "/v1/buyers/old%09id");
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["buyer_id"], "old\tid");
  auto [opt_status, opt_body] = Post("/v1/buyers/old%09id/opt-out", "");
  EXPECT_EQ(opt_status, 200) << opt_body.dump();
  auto [new_status, new_body] = Post("/v1/buyers/new%09id/opt-out", "");
  EXPECT_EQ(new_status, 400);
  EXPECT_THAT(new_body["error"].get<std::string>(), HasSubstr("control characters"));
}

TEST_F(InputTest, AStartThatCannotListenLeavesNoDatabase) {
  DaemonProcess& first = Start();
  DaemonProcess second(Path("touchpoint.yaml"), Path("second.db"), Path("second.log"));
  EXPECT_FALSE(second.Start(first.address()));
  EXPECT_EQ(second.Wait(), 1);
  EXPECT_THAT(second.log(), HasSubstr("Address already in use"));
  EXPECT_FALSE(std::filesystem::exists(Path("second.db")));
}

// Each client connection, and each request waiting for the database, is
// a descriptor: started with systemd's soft limit (1024 here, lower for
// the test), the daemon raises it to the hard limit.
TEST_F(InputTest, TheDaemonRaisesItsOpenFileLimitToTheHardLimit) {
  rlimit mine{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &mine), 0);
  if (mine.rlim_max <= 256) GTEST_SKIP() << "the hard limit is " << mine.rlim_max;
  const rlimit low{256, mine.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);  // inherited by the daemon
  DaemonProcess& d = Start();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &mine), 0);
  std::ifstream limits("/proc/" + std::to_string(d.pid()) + "/limits");
  std::string line, soft, hard;
  while (std::getline(limits, line)) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    fields >> soft >> hard;
  }
  EXPECT_EQ(hard, mine.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(mine.rlim_max));
  EXPECT_EQ(soft, hard);
}

}  // namespace
}  // namespace tp
