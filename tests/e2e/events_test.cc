// End-to-end: engagement events against the real touchpointd (issue 17):
// POST /v1/events with the purchases' contract (idempotent, atomic 400
// naming the item and field, 409 naming what differs), stop_on and `when`
// on the real clock, and a kill -9 during event ingest losing nothing
// acknowledged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "child_process.h"
#include "core/clock.h"
#include "daemon_process.h"
#include "harness.h"
#include "http/client.h"
#include "run_ctl.h"
#include "temp_dir.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;

// UTC, no send window, steps due two seconds after the purchase: the
// test waits for them at any hour.
constexpr std::string_view kEventsConfig = R"(version: 1
timezone: UTC
misfire_grace: 1h
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
cadences:
  - name: trust
    stop_on: [replied]
    steps:
      - {after: 1d, topic: day-one}
      - {after: 3d, topic: day-three}
  - name: engaged
    steps:
      - {after: 2s, topic: style-ideas, when: engaged}
  - name: checkpoint
    steps:
      - {after: 2s, topic: trust-checkpoint, when: not_engaged}
)";

std::string NowText(std::chrono::milliseconds shift = {}) {
  return FormatRfc3339(SystemClock().Now() + shift, UtcZone());
}

json Event(const std::string& id, const std::string& buyer, const std::string& type,
           const std::string& at) {
  return {{"event_id", id}, {"buyer_id", buyer}, {"type", type}, {"at", at}};
}

class EventsTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // `listen`: a port of its own (testing::PortForLater) when the test
  // talks to it across a kill: no other test's daemon is given that one.
  DaemonProcess& StartDaemon(const std::string& listen = "127.0.0.1:0") {
    testing::WriteFile(Path("touchpoint.yaml"), kEventsConfig);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    EXPECT_TRUE(daemon_->Start(listen));
    return *daemon_;
  }

  void Buy(const std::string& order, const std::string& buyer, const std::string& at) {
    auto [status, body] = daemon_->Call("POST", "/v1/purchases",
                                        {{"order_id", order},
                                         {"buyer_id", buyer},
                                         {"product", "daily"},
                                         {"quantity", 1},
                                         {"amount", 120},
                                         {"purchased_at", at}});
    ASSERT_EQ(status, 200) << body;
  }

  // The buyer's touchpoint with `topic`, once `done` holds for it (10 s).
  json WaitFor(const std::string& buyer, const std::string& topic,
               const std::function<bool(const json&)>& done) {
    json last;
    for (int i = 0; i < 1000; ++i) {
      auto [status, body] = daemon_->Call("GET", "/v1/buyers/" + buyer);
      for (const auto& t : body["touchpoints"]) {
        if (t["topic"] == topic) last = t;
      }
      if (status == 200 && !last.is_null() && done(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << buyer << "'s " << topic << " never got there: " << last.dump(2);
    return last;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(EventsTest, EventsAreIdempotentAtomicAndConflictsNameTheField) {
  DaemonProcess& d = StartDaemon();
  const std::string at = NowText(-std::chrono::minutes(5));
  auto [status, body] = d.Call("POST", "/v1/events", Event("e1", "lin", "read", at));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 1);
  EXPECT_EQ(body["results"][0]["status"], "accepted");

  std::tie(status, body) =
      d.Call("POST", "/v1/events", json::array({Event("e1", "lin", "read", at)}));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 0);
  EXPECT_EQ(body["duplicates"], 1);

  std::tie(status, body) =
      d.Call("POST", "/v1/events",
             json::array({Event("e2", "lin", "read", at), Event("e1", "lin", "clicked", at)}));
  EXPECT_EQ(status, 409) << body;
  EXPECT_EQ(body["index"], 1);
  EXPECT_EQ(body["field"], "type");
  EXPECT_EQ(body["error"], "event_id 'e1' was already recorded with another type");

  struct Case {
    json item;
    std::string field;
    std::string error;
  };
  json unknown_tp = Event("e3", "lin", "clicked", at);
  unknown_tp["touchpoint_id"] = "tp_0123456789abcdef0123456789abcdef";
  const Case cases[] = {
      {Event("e3", "lin", "opened", at), "type", "unknown type 'opened'"},
      {Event("e3", "lin", "read", "yesterday"), "at", "at must be an RFC 3339 time"},
      {Event("e3", "lin", "read", "1999-12-31T23:59:59Z"), "at", "at must be from 2000"},
      {json{{"event_id", "e3"}, {"buyer_id", "lin"}, {"type", "read"}}, "at", "missing field"},
      {unknown_tp, "touchpoint_id", "names no touchpoint of buyer 'lin'"},
  };
  for (const Case& c : cases) {
    std::tie(status, body) =
        d.Call("POST", "/v1/events", json::array({Event("e4", "wu", "read", at), c.item}));
    EXPECT_EQ(status, 400) << c.item.dump();
    EXPECT_EQ(body["index"], 1) << c.item.dump();
    EXPECT_EQ(body["field"], c.field) << c.item.dump();
    EXPECT_THAT(body["error"].get<std::string>(), HasSubstr(c.error)) << c.item.dump();
  }
  // Nothing of a refused request was kept: e2 and e4 are new.
  std::tie(status, body) =
      d.Call("POST", "/v1/events",
             json::array({Event("e2", "lin", "read", at), Event("e4", "wu", "read", at)}));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["accepted"], 2);
  auto metrics = d.http().Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(touchpoint_events_total{type="read",outcome="accepted"} 3)"));
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(touchpoint_events_total{type="read",outcome="duplicate"} 1)"));
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(touchpoint_events_total{type="clicked",outcome="conflict"} 1)"));
}

TEST_F(EventsTest, AReplyStopsTheCadenceAndWhenDecidesAtTheFire) {
  DaemonProcess& d = StartDaemon();
  const std::string bought = NowText();
  Buy("o1", "lin", bought);
  Buy("o2", "wu", bought);
  auto [status, body] = d.Call("POST", "/v1/events", Event("e1", "lin", "replied", NowText()));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["touchpoints_cancelled"], 2);  // lin's day-one and day-three

  const json day_one = WaitFor("lin", "day-one", [](const json&) { return true; });
  EXPECT_EQ(day_one["status"], "cancelled");
  EXPECT_THAT(day_one["reason"].get<std::string>(), HasSubstr("buyer replied at "));
  EXPECT_EQ(WaitFor("wu", "day-one", [](const json&) { return true; })["status"], "pending");

  auto settled = [](const json& t) { return t["status"] != "pending"; };
  EXPECT_EQ(WaitFor("lin", "style-ideas", settled)["status"], "fired");
  const json lin_checkpoint = WaitFor("lin", "trust-checkpoint", settled);
  EXPECT_EQ(lin_checkpoint["status"], "skipped");
  EXPECT_THAT(lin_checkpoint["reason"].get<std::string>(),
              HasSubstr("when: not_engaged, and the buyer replied at"));
  const json wu_style = WaitFor("wu", "style-ideas", settled);
  EXPECT_EQ(wu_style["status"], "skipped");
  EXPECT_EQ(wu_style["reason"],
            "when: engaged, and the buyer has not replied or clicked since the purchase");
  EXPECT_EQ(WaitFor("wu", "trust-checkpoint", settled)["status"], "fired");
}

TEST_F(EventsTest, Kill9DuringEventIngestLosesNothingAcknowledged) {
  const std::string listen = "127.0.0.1:" + std::to_string(testing::PortForLater());
  DaemonProcess& d = StartDaemon(listen);
  const std::string at = NowText(-std::chrono::minutes(1));
  auto client = HttpClient::Create(d.url());
  ASSERT_TRUE(client.ok());
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::thread sender([&] {
    for (int batch = 0; !stop; ++batch) {
      json items = json::array();
      std::vector<std::string> ids;
      for (int i = 0; i < 50; ++i) {
        ids.push_back("k" + std::to_string(batch) + "-" + std::to_string(i));
        items.push_back(Event(ids.back(), "b" + std::to_string(i % 7), "read", at));
      }
      auto r = (*client)->Request("POST", "/v1/events", items.dump());
      if (!r.ok()) break;  // the daemon is gone
      if (r->status != 200) continue;
      std::lock_guard lock(mu);
      acknowledged.insert(acknowledged.end(), ids.begin(), ids.end());
    }
  });
  // Some batches in, then a kill while more are in flight.
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (acknowledged.size() >= 1000) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  d.Kill9();
  stop = true;
  sender.join();
  ASSERT_GE(acknowledged.size(), 1000u);

  ASSERT_TRUE(d.Start(listen));
  for (std::size_t from = 0; from < acknowledged.size(); from += 1000) {
    json items = json::array();
    for (std::size_t i = from; i < std::min(acknowledged.size(), from + 1000); ++i) {
      const std::string& id = acknowledged[i];
      const int n = std::stoi(id.substr(id.find('-') + 1));
      items.push_back(Event(id, "b" + std::to_string(n % 7), "read", at));
    }
    auto [status, body] = d.Call("POST", "/v1/events", items);
    ASSERT_EQ(status, 200) << body;
    EXPECT_EQ(body["accepted"], 0) << "an acknowledged event was lost";
    EXPECT_EQ(body["duplicates"], items.size());
  }
}

TEST_F(EventsTest, CtlImportsAnEventsCsvNamingRejectedLines) {
  DaemonProcess& d = StartDaemon();
  const std::string at = NowText(-std::chrono::minutes(5));
  const std::string csv = Path("events.csv");
  testing::WriteFile(csv,
                     "event_id,buyer_id,type,at,touchpoint_id\n"
                     "v1,lin,read," +
                         at +
                         ",\n"
                         "v2,lin,opened," +
                         at +
                         ",\n"
                         "v3,lin,clicked," +
                         at +
                         ",tp_0123456789abcdef0123456789abcdef\n"
                         "v4,wu,replied," +
                         at +
                         ",\n"
                         "v1,lin,clicked," +
                         at + ",\n");
  auto r = testing::Ctl({"import", "--events", "--url", d.url(), "--batch", "2", csv});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("5 lines, 2 accepted, 0 duplicates, 3 rejected"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":3: field 'type': unknown type 'opened'"));
  EXPECT_THAT(r.err, HasSubstr(csv + ":4: field 'touchpoint_id': touchpoint_id "));
  EXPECT_THAT(r.err, HasSubstr(csv + ":6: field 'type': event_id 'v1' was already recorded "
                                     "with another type"));
  r = testing::Ctl({"import", "--events", "--url", d.url(), csv});
  EXPECT_THAT(r.out, HasSubstr("5 lines, 0 accepted, 2 duplicates, 3 rejected"));
}

TEST_F(EventsTest, TheOutcomesReportCountsTrustAndRepurchasesWithOpenWindowsApart) {
  DaemonProcess& d = StartDaemon();
  auto days_ago = [](int n) { return NowText(-std::chrono::hours(24) * n); };
  // Two boxes of 15 days: a 30-day repurchase window.
  auto buy = [&](const std::string& order, const std::string& buyer, int ago) {
    auto [status, body] = d.Call("POST", "/v1/purchases",
                                 {{"order_id", order},
                                  {"buyer_id", buyer},
                                  {"product", "daily"},
                                  {"quantity", 2},
                                  {"amount", 240},
                                  {"purchased_at", days_ago(ago)}});
    ASSERT_EQ(status, 200) << body;
  };
  buy("o1", "lin", 40);
  buy("o2", "lin", 15);  // repurchases o1, 25 days on; its own window is open
  buy("o3", "wu", 40);   // never repurchased: its window closed 10 days ago
  buy("o4", "amy", 5);   // open
  ASSERT_EQ(d.Call("POST", "/v1/events",
                   json::array({Event("t1", "lin", "clicked", days_ago(39)),
                                Event("t2", "wu", "read", days_ago(39)),
                                Event("t3", "amy", "replied", days_ago(4))}))
                .first,
            200);
  auto [status, body] = d.Call("GET", "/v1/reports/outcomes?by=tier");
  ASSERT_EQ(status, 200) << body;
  ASSERT_EQ(body["rows"].size(), 1u) << body;
  const json& row = body["rows"][0];
  EXPECT_EQ(row["key"], "default");
  EXPECT_EQ(row["purchases"], 4);
  EXPECT_EQ(row["trust_built"], 2);  // o1 (lin's click), o4 (amy's reply)
  EXPECT_EQ(row["trust_open"], 0);
  EXPECT_DOUBLE_EQ(row["trust_rate"].get<double>(), 0.5);
  EXPECT_EQ(row["repurchased"], 1);
  EXPECT_EQ(row["open"], 2);  // o2, o4
  EXPECT_DOUBLE_EQ(row["repurchase_rate"].get<double>(), 0.5);
  EXPECT_NEAR(row["median_days_to_repurchase"].get<double>(), 25, 0.001);  // times a few ms apart

  // As of 20 days ago: o2 and o4 were not bought yet.
  std::tie(status, body) = d.Call("GET", "/v1/reports/outcomes?by=product&as_of=" + days_ago(20));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["rows"][0]["key"], "daily");
  EXPECT_EQ(body["rows"][0]["purchases"], 2);  // o1 and o3, both still open then
  EXPECT_EQ(body["rows"][0]["open"], 2);

  for (const char* bad : {"by=store", "from=yesterday", "as_of=1999-01-01T00:00:00Z",
                          "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"}) {
    std::tie(status, body) = d.Call("GET", std::string("/v1/reports/outcomes?") + bad);
    EXPECT_EQ(status, 400) << bad;
    EXPECT_TRUE(body["field"].is_string()) << bad;
  }
  auto metrics = d.http().Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr(R"(touchpoint_repurchases_total{in_window="true"} 1)"));
  EXPECT_THAT(metrics->body, HasSubstr(R"(touchpoint_repurchases_total{in_window="false"} 0)"));

  auto r = testing::Ctl({"report", "--url", d.url(), "--by", "tier"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("outcomes by tier"));
  EXPECT_THAT(r.out, HasSubstr("50.0%"));
}

}  // namespace
}  // namespace tp
