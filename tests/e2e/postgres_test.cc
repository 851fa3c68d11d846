// End-to-end on PostgreSQL: real touchpointd processes with `--database
// postgresql://...` on a real server, over real HTTP: every feature on one
// daemon, three daemons sharing the work (ingest spread, a cap held across
// them, one killed with SIGKILL while firing), firing failing on its own
// connection (told by /healthz), a PostgreSQL restart during ingest, what
// fell due while it was down fired once it is back, and
// `touchpointctl export` from the database (postgres_loop_test.cc: what
// must not hold a daemon's loop up).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "core/clock.h"
#include "daemon_process.h"
#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "postgres_fixture.h"
#include "run_ctl.h"
#include "store/values.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::PgServer;

TEST_F(PostgresDaemonTest, EveryFeatureRunsOnPostgres) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config =
      testing::TestConfig().CancelOnRepurchase().Step("1s", "soon").Step("1d", "later").Yaml() +
      "engagement: {types: [replied], trust: [replied]}\n";
  DaemonProcess& d = Start(config, db->url());
  auto [status, body] = d.Call("GET", "/healthz");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["storage"]["backend"], "postgresql");

  const std::string at = Ago(std::chrono::seconds(2));
  ASSERT_EQ(d.Call("POST", "/v1/purchases",
                   json::array({PurchaseBody("o1", "lin", at), PurchaseBody("o2", "mei", at)}))
                .first,
            200);
  // Idempotent; a conflict names its field.
  EXPECT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "lin", at)).second["results"][0]["status"],
      "duplicate");
  std::tie(status, body) = d.Call("POST", "/v1/purchases", PurchaseBody("o1", "lin", Ago({})));
  EXPECT_EQ(status, 409);
  EXPECT_THAT(body.dump(), HasSubstr("purchased_at"));
  const auto seen = DrainQueue({&d}, 2, std::chrono::seconds(10));
  EXPECT_EQ(seen.size(), 2u);

  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["touchpoints"].size(), 2u);
  EXPECT_EQ(body["touchpoints"][0]["status"], "fired");
  const std::string fired_id = body["touchpoints"][0]["id"];
  // An id with a NUL is no one's (libpq would have cut it to "lin").
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin%00x");
  EXPECT_EQ(status, 400) << body;
  std::tie(status, body) = d.Call("POST", "/v1/events",
                                  {{"event_id", "e1"},
                                   {"buyer_id", "lin"},
                                   {"type", "replied"},
                                   {"at", Ago(std::chrono::milliseconds(1))},
                                   {"touchpoint_id", fired_id}});
  EXPECT_EQ(status, 200) << body;
  // A repurchase cancels the rest of o1.
  ASSERT_EQ(d.Call("POST", "/v1/purchases", PurchaseBody("o3", "lin", Ago(std::chrono::seconds(0))))
                .first,
            200);
  std::tie(status, body) = d.Call("GET", "/v1/buyers/lin");
  int cancelled = 0;
  for (const json& t : body["touchpoints"]) cancelled += t["status"] == "cancelled";
  EXPECT_EQ(cancelled, 1);

  std::tie(status, body) = d.Call("GET", "/v1/reports/outcomes?by=cadence");
  EXPECT_EQ(status, 200) << body;
  std::tie(status, body) = d.Call("GET", "/v1/status");
  EXPECT_EQ(status, 200) << body;
  EXPECT_TRUE(body["pending"]["days_as_of"].is_string()) << body;
  auto metrics = d.http().Request("GET", "/metrics", "");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("touchpoint_database_up 1"));
  EXPECT_THAT(metrics->body, HasSubstr("touchpoint_deliveries_taken_over_total 0"));
  EXPECT_THAT(metrics->body, HasSubstr("\ntouchpoint_touchpoints_held_for_order_total "));
  // o2's later step, and o3's (its first may have fired by now).
  EXPECT_THAT(metrics->body, ::testing::ContainsRegex("touchpoint_touchpoints_pending [23]\n"));
  d.Signal(SIGHUP);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
  EXPECT_THAT(d.log(), ::testing::Not(HasSubstr("s3cret")));
}

// Three daemons, one database: purchases spread over all three, each
// buyer's two steps due at once under a cap of one a day (in a zone where
// the day does not end meanwhile). Every buyer gets exactly one, whichever
// daemons fired, and no touchpoint is handed out twice.
TEST_F(PostgresDaemonTest, ThreeDaemonsShareTheWorkAndHoldTheCap) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config = testing::TestConfig()
                                 .Timezone(ZoneAtNoon())
                                 .Top("frequency_cap: {max: 1, per: day}")
                                 .Step("1s", "first")
                                 .Step("1s", "second")
                                 .Yaml();
  std::vector<DaemonProcess*> all;
  for (int i = 0; i < 3; ++i) all.push_back(&Start(config, db->url(), i));
  constexpr int kBuyers = 60;
  for (int b = 0; b < kBuyers; ++b) {
    ASSERT_EQ(all[static_cast<std::size_t>(b % 3)]
                  ->Call("POST", "/v1/purchases",
                         PurchaseBody("o" + std::to_string(b), "b" + std::to_string(b),
                                      Ago(std::chrono::milliseconds(500))))
                  .first,
              200);
  }
  const auto seen = DrainQueue(all, kBuyers, std::chrono::seconds(15));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kBuyers));
  for (const auto& [id, times] : seen) EXPECT_EQ(times, 1) << id;
  std::set<std::string> buyers;
  for (int b = 0; b < kBuyers; ++b) {
    auto [status, body] = all[0]->Call("GET", "/v1/buyers/b" + std::to_string(b));
    ASSERT_EQ(status, 200);
    int fired = 0;
    for (const json& t : body["touchpoints"]) fired += t["status"] == "fired";
    EXPECT_EQ(fired, 1) << body.dump();
  }
}

// Three daemons, no cap, continued together on a backlog: every buyer's six
// steps overdue, a second apart, the purchases all made at one instant, so
// in firing order the buyers' steps interleave (every buyer's first, then
// every buyer's second, ...): one daemon's claim takes the first 2,048 of
// the 2,100, another the last 52, the last steps of buyers whose earlier
// ones the first holds, and commits first. Each buyer's steps reach the
// queue in their order, as from one daemon. (Without the order check it
// failed 6 runs of 6.)
TEST_F(PostgresDaemonTest, ThreeDaemonsFireEachBuyersTouchpointsInOrder) {
  auto db = PgServer::Shared().NewDatabase();
  testing::TestConfig config;
  for (int s = 1; s <= 6; ++s) {
    config.Step(std::to_string(s + 3) + "s", "step-" + std::to_string(s));
  }
  std::vector<DaemonProcess*> all;
  for (int i = 0; i < 3; ++i) all.push_back(&Start(config.Yaml(), db->url(), i));
  constexpr int kBuyers = 350;
  const auto start = std::chrono::steady_clock::now();
  const std::string at = Ago(std::chrono::milliseconds(0));
  std::vector<json> bodies(all.size(), json::array());
  for (int b = 0; b < kBuyers; ++b) {
    bodies[static_cast<std::size_t>(b % 3)].push_back(
        PurchaseBody("o" + std::to_string(b), "b" + std::to_string(b), at));
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i]->Call("POST", "/v1/purchases", bodies[i]).first, 200);
  }
  for (DaemonProcess* d : all) d->Signal(SIGSTOP);
  // Recorded and the daemons stopped before the first step came due (three
  // requests: well under that, sanitizers included); continued together
  // once every step is due.
  ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  std::this_thread::sleep_until(start + std::chrono::seconds(10));
  for (DaemonProcess* d : all) d->Signal(SIGCONT);
  std::vector<json> handed;
  const auto seen = DrainQueue(all, 6 * kBuyers, std::chrono::seconds(30), &handed);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(6 * kBuyers));
  std::map<std::string, std::vector<std::string>> topics;
  for (const json& e : handed) {
    topics[e["buyer_id"].get<std::string>()].push_back(e["topic"].get<std::string>());
  }
  ASSERT_EQ(topics.size(), static_cast<std::size_t>(kBuyers));
  const std::vector<std::string> in_order = {"step-1", "step-2", "step-3",
                                             "step-4", "step-5", "step-6"};
  int out_of_order = 0;
  for (const auto& [buyer, got] : topics) {
    if (got != in_order) ++out_of_order;
    EXPECT_EQ(got, in_order) << buyer;
    if (out_of_order > 3) break;
  }
  // The claims did overlap: rows were held for their buyers' order, as
  // the daemons' /metrics count.
  double held = 0;
  for (DaemonProcess* d : all) {
    auto metrics = d->http().Request("GET", "/metrics", "");
    ASSERT_TRUE(metrics.ok());
    const std::string name = "\ntouchpoint_touchpoints_held_for_order_total ";
    const auto line = metrics->body.find(name);
    ASSERT_NE(line, std::string::npos);
    held += std::stod(metrics->body.substr(line + name.size()));
  }
  std::printf("held for order: %.0f\n", held);
  EXPECT_GT(held, 0);
}

// SIGKILL of one of three daemons while touchpoints come due: the others
// fire its share (the purchases it took, whose later steps come due after
// it died), nothing is lost, and (queue sinks: a fire and its message are
// one transaction) nothing is handed out twice.
TEST_F(PostgresDaemonTest, AKilledDaemonsShareIsTakenOver) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config = testing::TestConfig().Step("2s", "soon").Step("4s", "later").Yaml();
  std::vector<DaemonProcess*> all;
  for (int i = 0; i < 3; ++i) all.push_back(&Start(config, db->url(), i));
  constexpr int kBuyers = 90;
  for (int b = 0; b < kBuyers; ++b) {
    ASSERT_EQ(all[static_cast<std::size_t>(b % 3)]
                  ->Call("POST", "/v1/purchases",
                         PurchaseBody("o" + std::to_string(b), "b" + std::to_string(b),
                                      Ago(std::chrono::milliseconds(0))))
                  .first,
              200);
  }
  // While the first steps fire.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  all[2]->Kill9();
  const auto seen = DrainQueue({all[0], all[1]}, 2 * kBuyers, std::chrono::seconds(20));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * kBuyers));
  for (const auto& [id, times] : seen) EXPECT_EQ(times, 1) << id;
}

// The daemon's sessions ended by the server (an administrator, a proxy's
// idle timeout) while touchpoints wait: the next pass fails, the server
// still answers, and the daemon goes on firing on a new connection.
TEST_F(PostgresDaemonTest, SessionsEndedByTheServerAreReopened) {
  auto db = PgServer::Shared().NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("2s", "soon").Yaml(), db->url());
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago(std::chrono::seconds(0)))).first,
      200);
  db->EndSessions("touchpointd%");
  const auto seen = DrainQueue({&d}, 1, std::chrono::seconds(10));
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(d.Call("GET", "/healthz").second["status"], "ok");
}

// Firing fails on its own connection while the server answers everything
// else (a constraint that refuses the fire's update): /healthz says so
// under "firing", and "ok" again once a pass goes through.
TEST_F(PostgresDaemonTest, FiringThatFailsAloneShowsOnHealthz) {
  auto db = PgServer::Shared().NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1s", "soon").Yaml(), db->url());
  EXPECT_EQ(d.Call("GET", "/healthz").second["firing"], json({{"state", "ok"}}));
  auto admin = pg::Connection::Open(db->url(), "test");
  admin->Exec("ALTER TABLE touchpoints ADD CONSTRAINT refuse_fire CHECK (state <> 1) NOT VALID");
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago(std::chrono::seconds(0)))).first,
      200);
  // Retried every second: the failures add up (the reads of the next due
  // time in between work, and do not clear them).
  json health;
  for (int i = 0; i < 150; ++i) {
    health = d.Call("GET", "/healthz").second;
    if (health["firing"].value("consecutive_failures", 0) >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(health["firing"]["state"], "failing") << health.dump();
  EXPECT_GE(health["firing"]["consecutive_failures"].get<int>(), 3);
  EXPECT_THAT(health["firing"]["last_error"].get<std::string>(), HasSubstr("refuse_fire"));
  EXPECT_EQ(health["storage"]["state"], "ok");  // the probe's connection answers
  EXPECT_EQ(health["status"], "ok");            // degraded only after kFiringFailuresDegrade

  admin->Exec("ALTER TABLE touchpoints DROP CONSTRAINT refuse_fire");
  EXPECT_EQ(DrainQueue({&d}, 1, std::chrono::seconds(10)).size(), 1u);
  // The pass that fired it clears the failures once it ends.
  for (int i = 0; i < 50; ++i) {
    health = d.Call("GET", "/healthz").second;
    if (health["firing"]["state"] == "ok") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(health["firing"], json({{"state", "ok"}}));
}

// PostgreSQL stops while purchases come in: ingest and the queues' routes
// answer 503 with Retry-After, /healthz says why, and once the server is
// back the daemon resumes by itself.
TEST_F(PostgresDaemonTest, APostgresRestartPausesIngestAndTheDaemonRecovers) {
  PgServer own;  // restarted by this test alone
  auto db = own.NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("1s", "soon").Yaml(), db->url());
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago(std::chrono::seconds(0)))).first,
      200);
  own.Stop();
  const std::string body_text = PurchaseBody("o2", "b2", Ago(std::chrono::seconds(0))).dump();
  const std::string refused = testing::RawExchange(
      d.address(),
      "POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nContent-Length: " +
          std::to_string(body_text.size()) + "\r\n\r\n" + body_text);
  EXPECT_THAT(refused, HasSubstr("HTTP/1.1 503"));
  EXPECT_THAT(refused, HasSubstr("Retry-After:"));
  // So do a lease and an ack, which run off the loop on a connection of
  // their own.
  for (const auto& [route, request] :
       {std::pair<std::string, std::string>{"lease", R"({"max": 10})"},
        std::pair<std::string, std::string>{"ack", R"({"receipts": ["1.00ff"]})"}}) {
    const std::string answer = testing::RawExchange(
        d.address(), "POST /v1/queues/outbox/" + route +
                         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         "Connection: close\r\nContent-Length: " +
                         std::to_string(request.size()) + "\r\n\r\n" + request);
    EXPECT_THAT(answer, HasSubstr("HTTP/1.1 503")) << route;
    EXPECT_THAT(answer, HasSubstr("Retry-After:")) << route;
  }
  // The probe that finds the server gone answers off the loop.
  auto [status, body] = AwaitDegraded(d);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["storage"]["state"], "unreachable");
  EXPECT_THAT(body["storage"]["reason"].get<std::string>(), HasSubstr("does not answer"));
  // /metrics still answers, with what the daemon sees (the database
  // down) and without the counts it cannot make; the routes that need the
  // store answer 503 as ingest does.
  auto metrics = d.http().Request("GET", "/metrics", "");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200) << metrics->body;
  EXPECT_THAT(metrics->body, HasSubstr("\ntouchpoint_database_up 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\ntouchpoint_store_counts_up 0\n"));
  EXPECT_THAT(metrics->body, ::testing::Not(HasSubstr("\ntouchpoint_touchpoints_pending ")));
  for (const char* path : {"/v1/status", "/v1/buyers/b1"}) {
    const std::string answer = testing::RawExchange(
        d.address(),
        std::string("GET ") + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    EXPECT_THAT(answer, HasSubstr("HTTP/1.1 503")) << path;
    EXPECT_THAT(answer, HasSubstr("Retry-After:")) << path;
  }

  own.Start();
  // Back within the probe's backoff (at most 4 s apart).
  int answered = 0;
  for (int i = 0; i < 100 && answered != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answered =
        d.Call("POST", "/v1/purchases", PurchaseBody("o2", "b2", Ago(std::chrono::seconds(0))))
            .first;
  }
  EXPECT_EQ(answered, 200) << d.log();
  EXPECT_EQ(d.Call("GET", "/healthz").second["status"], "ok");
  const auto seen = DrainQueue({&d}, 2, std::chrono::seconds(10));
  EXPECT_EQ(seen.size(), 2u);
  metrics = d.http().Request("GET", "/metrics", "");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("\ntouchpoint_store_counts_up 1\n"));
  EXPECT_THAT(d.log(), HasSubstr("the database does not answer"));
  EXPECT_THAT(d.log(), HasSubstr("answers again"));
}

// A touchpoint falls due while PostgreSQL is down, and nothing comes in
// afterwards: the daemon's probe finding the server back is what resumes
// firing (daemon.cc's watch: every session told, firing re-armed), so it
// fires then, not at the next purchase.
TEST_F(PostgresDaemonTest, WhatFellDueInAnOutageFiresOnceTheServerIsBack) {
  PgServer own;  // stopped and started by this test alone
  auto db = own.NewDatabase();
  DaemonProcess& d = Start(testing::TestConfig().Step("10s", "soon").Yaml(), db->url());
  const Instant bought = SystemClock().Now();
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", FormatRfc3339(bought, UtcZone())))
          .first,
      200);
  own.Stop();
  const Instant stopped = SystemClock().Now();
  ASSERT_LT(stopped, bought + std::chrono::seconds(10)) << "the server took too long to stop";
  EXPECT_EQ(AwaitDegraded(d).second["status"], "degraded");
  // Down past the due time.
  std::this_thread::sleep_until(bought + std::chrono::milliseconds(10500));
  const Instant restarted = SystemClock().Now();
  own.Start();
  // Nothing but /healthz is asked until the touchpoint is in the queue.
  std::string health;
  for (int i = 0; i < 100; ++i) {
    health = d.Call("GET", "/healthz").second["status"];
    if (health == "ok") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(health, "ok") << d.log();
  auto watch = pg::Connection::Open(db->url(), "test");
  std::int64_t fired_at = 0;
  for (int i = 0; i < 100 && fired_at == 0; ++i) {
    pg::Result r = watch->Exec("SELECT fire_at FROM touchpoints WHERE state = 1");
    if (r.rows() == 1) fired_at = r.Int64(0, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(fired_at, 0) << "not fired within 10 s of the server answering again\n" << d.log();
  EXPECT_GE(fired_at, sql::Ms(restarted)) << "fired before the outage";
  EXPECT_EQ(DrainQueue({&d}, 1, std::chrono::seconds(10)).size(), 1u);
}

// The export reads PostgreSQL as it reads SQLite: the same requests to a
// daemon on each give the same two files, byte for byte.
TEST_F(PostgresDaemonTest, ExportWritesWhatItWritesFromSqlite) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config =
      testing::TestConfig().Step("1d", "later").Yaml() + "engagement: {types: [replied, read]}\n";
  DaemonProcess& on_pg = Start(config, db->url(), 0);
  DaemonProcess on_sqlite(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon-sqlite.log"));
  ASSERT_TRUE(on_sqlite.Start());
  json purchases = json::array();
  for (int i = 0; i < 30; ++i) {
    json p = PurchaseBody("o" + std::to_string(i), "b" + std::to_string(i % 7),
                          Ago(std::chrono::hours(30 - i) + std::chrono::milliseconds(i)));
    p["amount"] = 0.1 * i;
    if (i % 3 == 0) p["timezone"] = "Asia/Tokyo";
    if (i % 4 == 0) p["attributes"] = {{"note", "a, \"b\" " + std::to_string(i)}};
    purchases.push_back(p);
  }
  json events = json::array();
  for (int i = 0; i < 10; ++i) {
    events.push_back({{"event_id", "e" + std::to_string(i)},
                      {"buyer_id", "b" + std::to_string(i % 7)},
                      {"type", i % 2 == 0 ? "replied" : "read"},
                      {"at", Ago(std::chrono::minutes(60 - i))}});
  }
  for (DaemonProcess* d : {&on_pg, &on_sqlite}) {
    auto [status, body] = d->Call("POST", "/v1/purchases", purchases);
    ASSERT_EQ(status, 200) << body;
    std::tie(status, body) = d->Call("POST", "/v1/events", events);
    ASSERT_EQ(status, 200) << body;
  }

  // While the daemons run.
  auto r = testing::Ctl({"export", "--database", db->url(), Path("from-pg")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exported 30 purchases and 10 events from "));
  EXPECT_THAT(r.err, HasSubstr("export: purchases: 30 of 30 (100%)"));
  r = testing::Ctl({"export", "--database", Path("tp.db"), Path("from-sqlite")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* file : {"/purchases.csv", "/events.csv"}) {
    const std::string from_pg = testing::Slurp(Path("from-pg") + file);
    EXPECT_THAT(from_pg, HasSubstr("\n")) << file;
    EXPECT_EQ(from_pg, testing::Slurp(Path("from-sqlite") + file)) << file;
  }
  EXPECT_THAT(testing::Slurp(Path("from-pg/purchases.csv")), HasSubstr("Asia/Tokyo"));

  // A database no daemon has opened is named, without its password.
  auto empty = PgServer::Shared().NewDatabase();
  std::string url = empty->url();
  url.insert(url.find('@'), ":s3cret");  // trust auth: accepted, not checked
  r = testing::Ctl({"export", "--database", url, Path("from-empty")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("has schema version 0; this touchpointctl exports versions 1 to"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cret")));
}

}  // namespace
}  // namespace tp
