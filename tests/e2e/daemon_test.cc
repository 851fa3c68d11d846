// End-to-end: the real touchpointd binary, a temporary SQLite file, real HTTP
// over loopback, real signals.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <set>

#include "child_process.h"
#include "core/clock.h"
#include "daemon_fixture.h"
#include "harness.h"
#include "run_ctl.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::Ago;
using testing::DaemonProcess;
using testing::DaemonTest;
using testing::DailyPurchase;
using ::testing::HasSubstr;
using testing::kFastConfig;
using testing::RecentInsideTheWindow;
using testing::RecentTime;

TEST_F(DaemonTest, ServesHealthAndStopsCleanlyOnSigterm) {
  DaemonProcess& d = StartDaemon();
  auto [status, body] = d.Call("GET", "/healthz");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["status"], "ok");
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
  EXPECT_THAT(d.log(), HasSubstr("stopped"));
}

TEST_F(DaemonTest, BadConfigExits78WithEveryErrorAndItsPosition) {
  testing::WriteFile(Path("bad.yaml"), "version: 1\nproducts: {p: {supply_days: -1}}\n");
  DaemonProcess d(Path("bad.yaml"), Path("tp.db"), Path("daemon.log"));
  EXPECT_FALSE(d.Start());
  EXPECT_EQ(d.Wait(), 78);
  EXPECT_THAT(d.log(), HasSubstr(Path("bad.yaml") + ":2:"));
  EXPECT_THAT(d.log(), HasSubstr("not starting"));
}

TEST_F(DaemonTest, PortInUseAndUnusableDatabaseFailWithOneLine) {
  DaemonProcess& first = StartDaemon();
  DaemonProcess second(Path("touchpoint.yaml"), Path("other.db"), Path("second.log"));
  EXPECT_FALSE(second.Start(first.address()));
  EXPECT_EQ(second.Wait(), 1);
  EXPECT_THAT(second.log(), HasSubstr("cannot listen on " + first.address()));
  EXPECT_THAT(second.log(), HasSubstr("Address already in use"));

  DaemonProcess same_db(Path("touchpoint.yaml"), Path("tp.db"), Path("third.log"));
  EXPECT_FALSE(same_db.Start());
  EXPECT_EQ(same_db.Wait(), 1);
  EXPECT_THAT(same_db.log(), HasSubstr("is in use by another touchpointd"));

  DaemonProcess nowhere(Path("touchpoint.yaml"), Path("no/such/dir/tp.db"), Path("fourth.log"));
  EXPECT_FALSE(nowhere.Start());
  EXPECT_EQ(nowhere.Wait(), 1);
  EXPECT_THAT(nowhere.log(), HasSubstr("cannot open database"));
}

TEST_F(DaemonTest, IngestIsIdempotentAndConflictsAre409) {
  DaemonProcess& d = StartDaemon();
  auto [status, body] = d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin"));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 1);
  EXPECT_EQ(body["touchpoints_planned"], 6);
  EXPECT_EQ(body["results"][0]["tier"], "novice");

  std::tie(status, body) =
      d.Call("POST", "/v1/purchases", json::array({DailyPurchase("o1", "lin")}));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 0);
  EXPECT_EQ(body["duplicates"], 1);
  EXPECT_EQ(body["results"][0]["status"], "duplicate");

  json changed = DailyPurchase("o1", "lin");
  changed["quantity"] = 3;
  std::tie(status, body) =
      d.Call("POST", "/v1/purchases", json::array({DailyPurchase("o2", "lin"), changed}));
  EXPECT_EQ(status, 409) << body;
  EXPECT_EQ(body["index"], 1);
  EXPECT_EQ(body["field"], "quantity");  // what differs
  EXPECT_EQ(body["order_id"], "o1");
  EXPECT_EQ(body["error"], "order_id 'o1' was already recorded with another quantity");

  // Nothing of the rejected request was kept: o2 is new, lin has one purchase.
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["purchases"].size(), 1u);
  EXPECT_EQ(body["touchpoints"].size(), 6u);
  EXPECT_EQ(body["tier"], "novice");
  EXPECT_FALSE(body["opted_out"]);
  std::tie(status, body) = d.Call("GET", "/v1/buyers/nobody");
  EXPECT_EQ(status, 404);
}

TEST_F(DaemonTest, ABadItemRejectsTheWholeRequestNamingItAndItsField) {
  DaemonProcess& d = StartDaemon();
  struct Case {
    std::string field;
    json value;  // null = remove the field
    std::string error_part;
  };
  const std::vector<Case> cases = {
      {"quantity", 0, "from 1 to 1000000, got 0"},
      {"quantity", "2", "must be an integer, got \"2\""},
      {"amount", -1, "from 0 to 1e12, got -1"},
      {"product", "monthly", "unknown product 'monthly'"},
      {"timezone", "Mars/Olympus", "unknown time zone"},
      {"purchased_at", "2026-11-20 10:00", "RFC 3339"},
      {"purchased_at", "2026-11-20T10:00:00", "RFC 3339"},
      {"buyer_id", nullptr, "missing field 'buyer_id'"},
      {"order_id", 17, "must be a string"},
      {"attributes", json::array(), "must be a JSON object"},
      {"colour", "blue", "unknown field 'colour'"},
  };
  for (const Case& c : cases) {
    json bad = DailyPurchase("bad", "b2");
    if (c.value.is_null()) {
      bad.erase(c.field);
    } else {
      bad[c.field] = c.value;
    }
    auto [status, body] =
        d.Call("POST", "/v1/purchases", json::array({DailyPurchase("good", "b1"), bad}));
    EXPECT_EQ(status, 400) << c.field;
    EXPECT_EQ(body["index"], 1) << c.field;
    EXPECT_EQ(body["field"], c.field);
    EXPECT_THAT(body["error"].get<std::string>(), HasSubstr(c.error_part)) << body;
  }
  EXPECT_EQ(d.Call("GET", "/v1/buyers/b1").first, 404);
}

TEST_F(DaemonTest, MalformedRequestsAreRejectedWithoutHarm) {
  DaemonProcess& d = StartDaemon();
  auto r = d.http().Request("POST", "/v1/purchases", "{\"order_id\": ");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("malformed JSON"));

  r = d.http().Request("POST", "/v1/purchases", DailyPurchase("o1", "b").dump(), "text/plain");
  EXPECT_EQ(r->status, 415);

  // A body over the limit is refused as soon as its Content-Length is read.
  const int fd = testing::RawConnect(d.address());
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 40000000\r\n\r\n[";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  char buf[512] = {};
  ASSERT_GT(::recv(fd, buf, sizeof buf - 1, 0), 0);
  EXPECT_THAT(std::string(buf), HasSubstr("HTTP/1.1 413"));
  ::close(fd);

  json many = json::array();
  for (int i = 0; i < 1'001; ++i) {
    many.push_back(DailyPurchase("m" + std::to_string(i), "b" + std::to_string(i % 200)));
  }
  auto [status, body] = d.Call("POST", "/v1/purchases", many);
  EXPECT_EQ(status, 400);
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("at most 1000"));
  many.erase(many.size() - 1);
  std::tie(status, body) = d.Call("POST", "/v1/purchases", many);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["accepted"], 1'000);

  EXPECT_EQ(d.Call("GET", "/v1/purchases").first, 405);
  EXPECT_EQ(d.Call("GET", "/v1/nothing").first, 404);
  EXPECT_EQ(d.Call("POST", "/v1/queues/nope/lease", json::object()).first, 404);
  // The daemon is unharmed.
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(DaemonTest, StalledClientsDoNotBlockOthersAndAreTimedOut) {
  std::string config(testing::kBriefConfig);
  config += "http: {request_timeout: 1s}\n";
  DaemonProcess& d = StartDaemon(config);
  // Half a request header, then silence; and a body that never completes.
  const int stalled = testing::RawConnect(d.address());
  ASSERT_GE(stalled, 0);
  const std::string partial = "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  ASSERT_EQ(::send(stalled, partial.data(), partial.size(), 0),
            static_cast<ssize_t>(partial.size()));
  const int short_body = testing::RawConnect(d.address());
  ASSERT_GE(short_body, 0);
  const std::string head =
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000\r\n\r\n[";
  ASSERT_EQ(::send(short_body, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));

  const auto started = std::chrono::steady_clock::now();
  auto [status, body] = d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin"));
  EXPECT_EQ(status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));

  // Both stalled connections are closed by the daemon after the timeout.
  for (int fd : {stalled, short_body}) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    EXPECT_LE(::recv(fd, buf, sizeof buf, 0), 0);
    ::close(fd);
  }
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
}

TEST_F(DaemonTest, OptOutSuppressesAndOptInPlansOnlyFuturePurchases) {
  DaemonProcess& d = StartDaemon();
  ASSERT_EQ(d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin")).first, 200);
  auto [status, body] = d.Call("POST", "/v1/buyers/lin/opt-out");
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["suppressed"], 6);
  std::tie(status, body) =
      d.Call("POST", "/v1/purchases", DailyPurchase("o2", "lin", Ago(Millis(0))));
  EXPECT_EQ(body["touchpoints_planned"], 0);
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  EXPECT_TRUE(body["opted_out"]);
  EXPECT_EQ(CountStatus(body, "suppressed"), 6);
  for (const auto& t : body["touchpoints"]) EXPECT_EQ(t["reason"], "opted out");

  std::tie(status, body) = d.Call("POST", "/v1/buyers/lin/opt-in");
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(body["opted_out"]);
  std::tie(status, body) =
      d.Call("POST", "/v1/purchases", DailyPurchase("o3", "lin", Ago(Millis(0))));
  EXPECT_GT(body["touchpoints_planned"].get<int>(), 0);
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  EXPECT_EQ(CountStatus(body, "suppressed"), 6);  // opt-in revives nothing
  // Opting out an unknown buyer records the wish for future purchases.
  EXPECT_EQ(d.Call("POST", "/v1/buyers/stranger/opt-out").first, 200);
  std::tie(status, body) = d.Call("POST", "/v1/purchases", DailyPurchase("o9", "stranger"));
  EXPECT_EQ(body["touchpoints_planned"], 0);
}

TEST_F(DaemonTest, RepurchaseCancelsEarlierTouchpointsWithAReason) {
  DaemonProcess& d = StartDaemon(kFastConfig);
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin", Ago(std::chrono::hours(2)))).first,
      200);
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", DailyPurchase("o2", "lin", Ago(std::chrono::hours(1)))).first,
      200);
  json buyer = WaitForBuyer("lin", [](const json& b) { return CountStatus(b, "fired") == 1; });
  EXPECT_EQ(buyer["tier"], "newbie");
  int cancelled = 0;
  for (const auto& t : buyer["touchpoints"]) {
    if (t["order_id"] == "o1" && t["topic"] != "soon") {
      EXPECT_EQ(t["status"], "cancelled");
      EXPECT_EQ(t["reason"], "repurchased: order o2");
      ++cancelled;
    }
    if (t["order_id"] == "o1" && t["topic"] == "soon") {
      // Missed by two hours while grace is one: skipped, with the reason.
      EXPECT_EQ(t["status"], "skipped");
      EXPECT_THAT(t["reason"].get<std::string>(), HasSubstr("more than misfire_grace 1h"));
    }
  }
  EXPECT_EQ(cancelled, 2);
}

TEST_F(DaemonTest, LeaseAckAndVisibilityTimeout) {
  DaemonProcess& d = StartDaemon(kFastConfig);
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin", Ago(std::chrono::seconds(5))))
          .first,
      200);
  WaitForBuyer("lin", [](const json& b) { return CountStatus(b, "fired") == 1; });
  auto [status, body] =
      d.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}, {"visibility_s", 1}});
  ASSERT_EQ(status, 200) << body;
  ASSERT_EQ(body["messages"].size(), 1u);
  const json first = body["messages"][0];
  EXPECT_EQ(first["event"]["type"], "touchpoint.due");
  EXPECT_EQ(first["event"]["data"]["topic"], "soon");
  EXPECT_EQ(first["event"]["data"]["buyer_id"], "lin");

  std::tie(status, body) = d.Call("POST", "/v1/queues/outbox/lease", {{"visibility_s", 1}});
  EXPECT_TRUE(body["messages"].empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::tie(status, body) = d.Call("POST", "/v1/queues/outbox/lease", json::object());
  ASSERT_EQ(body["messages"].size(), 1u);
  const json second = body["messages"][0];
  EXPECT_EQ(second["event"]["data"]["id"], first["event"]["data"]["id"]);
  EXPECT_EQ(second["deliveries"], 2);

  std::tie(status, body) =
      d.Call("POST", "/v1/queues/outbox/ack", {{"receipts", {first["receipt"]}}});
  EXPECT_EQ(body["acked"], 0);
  std::tie(status, body) =
      d.Call("POST", "/v1/queues/outbox/ack", {{"receipts", {second["receipt"]}}});
  EXPECT_EQ(body["acked"], 1);
  std::tie(status, body) = d.Call("POST", "/v1/queues/outbox/lease", {{"visibility_s", 0.01}});
  EXPECT_TRUE(body["messages"].empty());

  std::tie(status, body) = d.Call("POST", "/v1/queues/outbox/lease", {{"max", 0}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["field"], "max");
  std::tie(status, body) = d.Call("POST", "/v1/queues/outbox/ack", {{"receipts", "x"}});
  EXPECT_EQ(status, 400);
}

TEST_F(DaemonTest, CtlImportReportsRejectedLinesAndBuyerShowsTheTimeline) {
  DaemonProcess& d = StartDaemon();
  const std::string csv = Path("purchases.csv");
  testing::WriteFile(csv,
                     "order_id,buyer_id,product,quantity,amount,purchased_at,timezone\n"
                     "c1,zed,daily,2,240," +
                         RecentTime() +
                         ",\n"
                         "c2,zed,daily,zero,240," +
                         RecentTime() +
                         ",\n"
                         "c3,\"zed,1,2\n"
                         "c4,amy,daily,1,120," +
                         RecentInsideTheWindow("Europe/Berlin") +
                         ",Europe/Berlin\n"
                         "c1,zed,daily,3,240," +
                         RecentTime() +
                         ",\n"
                         "c5,amy,monthly,1,120," +
                         RecentTime() + ",\n");
  auto r = testing::Ctl({"import", "--url", d.url(), "--batch", "2", csv});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("6 lines, 2 accepted, 0 duplicates, 4 rejected"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":3: field 'quantity': quantity must be an integer"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":4: unterminated quoted field"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":6: field 'quantity': order_id 'c1' was already recorded "
                                     "with another quantity"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":7: field 'product': unknown product 'monthly'"));
  EXPECT_THAT(r.err, HasSubstr("import: 6 lines read (100%)"));  // plain progress, no terminal

  // Importing again: everything accepted before is a duplicate.
  r = testing::Ctl({"import", "--url", d.url(), csv});
  EXPECT_THAT(r.out, HasSubstr("6 lines, 0 accepted, 2 duplicates, 4 rejected"));

  r = testing::Ctl({"buyer", "--url", d.url(), "amy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("buyer amy: tier novice, opted in"));
  EXPECT_THAT(r.out, HasSubstr("trust/how-to-wear"));
  EXPECT_THAT(r.out, HasSubstr("waiting until due_at"));
  r = testing::Ctl({"buyer", "--url", d.url(), "--json", "amy"});
  EXPECT_EQ(json::parse(r.out)["purchases"][0]["timezone"], "Europe/Berlin");
  r = testing::Ctl({"buyer", "--url", d.url(), "nobody"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "touchpointctl: unknown buyer 'nobody'\n");

  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0);
  // No daemon there: not the stopped one's port, which another test's
  // daemon may be given meanwhile (and this import once went to one).
  const std::string nobody = "127.0.0.1:" + std::to_string(testing::PortForLater());
  r = testing::Ctl({"buyer", "--url", "http://" + nobody, "amy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("touchpointctl: cannot connect to " + nobody));
  r = testing::Ctl({"import", "--url", "http://" + nobody, csv});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to"));
}

}  // namespace
}  // namespace tp
