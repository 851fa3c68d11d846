// End-to-end on PostgreSQL: a Redis sink, which one daemon at a time
// delivers (in fire order), delivered by another daemon when the first
// cannot reach Redis; daemons on two database roles, warned of.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "child_process.h"
#include "core/time.h"
#include "daemon_process.h"
#include "pg_server.h"
#include "postgres_fixture.h"
#include "redis_server.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using testing::PgServer;
using testing::RedisServer;

// Daemon A delivers the stream first, and cannot reach Redis (its sink's
// URL names a port nobody listens on); daemon B can. A lets the sink go
// once its circuit opens: B delivers every event, in fire order, those A
// had tried included, without waiting for A to stop.
TEST_F(PostgresDaemonTest, AStreamADaemonCannotReachIsDeliveredByAnother) {
  auto db = PgServer::Shared().NewDatabase();
  const int live = testing::PortForLater();
  RedisServer redis;
  redis.Start(dir_.path(), live);
  const int dead = testing::PortForLater();
  const auto config = [](int port) {
    return testing::TestConfig()
        .Step("1s", "soon")
        .Sinks("  - {name: events, type: redis, url: \"redis://127.0.0.1:" + std::to_string(port) +
               "/0\"}")
        .Yaml();
  };
  DaemonProcess& a = Start(config(dead), db->url(), 0);
  constexpr int kBuyers = 6;
  for (int i = 0; i < kBuyers; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(a.Call("POST", "/v1/purchases", PurchaseBody("o" + n, "b" + n, Ago({}))).first, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(Eventually([&] { return a.log().find("sink events: failing") != std::string::npos; },
                         std::chrono::seconds(20)));
  DaemonProcess& b = Start(config(live), db->url(), 1);
  std::vector<std::map<std::string, std::string>> entries;
  EXPECT_TRUE(Eventually([&] { return (entries = redis.Entries("touchpoints")).size() >= kBuyers; },
                         std::chrono::seconds(30)))
      << entries.size() << " entries";
  ASSERT_EQ(entries.size(), static_cast<std::size_t>(kBuyers));
  // In fire order: each buyer's one step, by fire time (then due time),
  // as instants ("10:00:05Z" sorts after "10:00:05.120Z" as text).
  std::vector<std::tuple<Instant, Instant, std::string>> fired;
  for (int i = 0; i < kBuyers; ++i) {
    auto [status, body] = b.Call("GET", "/v1/buyers/b" + std::to_string(i));
    ASSERT_EQ(status, 200);
    for (const json& t : body["touchpoints"]) {
      const auto fire_at = ParseRfc3339(t["fire_at"].get<std::string>());
      const auto due_at = ParseRfc3339(t["due_at"].get<std::string>());
      ASSERT_TRUE(fire_at && due_at) << t.dump();
      fired.emplace_back(*fire_at, *due_at, t["id"].get<std::string>());
    }
  }
  std::sort(fired.begin(), fired.end());
  std::vector<std::string> want, got;
  for (const auto& f : fired) want.push_back(std::get<2>(f));
  for (auto& e : entries) got.push_back(e["id"]);
  EXPECT_EQ(got, want);
  // A's next probe (its pauses double from 1 s) finds the stream B's: A
  // stands by, and does not show the sink failing while B delivers it.
  json health;
  EXPECT_TRUE(Eventually(
      [&] {
        health = a.Call("GET", "/healthz").second;
        return health["sinks"][0]["state"] == "standby";
      },
      std::chrono::seconds(40)))
      << health.dump();
  EXPECT_NE(a.log().find("sink events: delivered by another daemon"), std::string::npos);
}

// Daemons on one database connected as two roles, one of which cannot see
// when the other's sessions started (a plain role, beside the server's
// superuser): the daemon that starts second warns of it.
TEST_F(PostgresDaemonTest, ADaemonStartedBesideAnotherRolesDaemonWarnsOfIt) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string config = testing::TestConfig().Step("1h", "later").Yaml();
  DaemonProcess& a = Start(config, db->url(), 0);
  // (Made once A has migrated: it may use every table.)
  DaemonProcess& b = Start(config, db->UrlAs(db->AnotherRole()), 1);
  EXPECT_TRUE(Eventually(
      [&] {
        return b.log().find(
                   "other daemons on this database connect as another role (touchpoint)") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << b.log();
  EXPECT_EQ(a.log().find("another role"), std::string::npos);  // alone when it started
}

// A server whose lock table has room for one daemon's locks and not two:
// the second daemon says so at start, with the setting that would make
// room (322 slots: max_connections 300, and the defaults' 22).
TEST_F(PostgresDaemonTest, ADaemonWarnsWhenTheServersLockTableHasNoRoomForEveryDaemon) {
  PgServer own(
      PgServer::Settings{"-c fsync=off -c synchronous_commit=off -c max_locks_per_transaction=10"});
  auto db = own.NewDatabase();
  const std::string config = testing::TestConfig().Step("1h", "later").Yaml();
  DaemonProcess& a = Start(config, db->url(), 0);
  DaemonProcess& b = Start(config, db->url(), 1);
  EXPECT_TRUE(Eventually(
      [&] {
        return b.log().find(
                   "lock table has room for 3220 locks (max_locks_per_transaction 10 "
                   "times 322 server processes and prepared transactions), and the 2 "
                   "daemons on the server may hold about 2100 each, 4200 in all") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << b.log();
  EXPECT_THAT(b.log(), ::testing::HasSubstr("raise max_locks_per_transaction to 64 or more"));
  EXPECT_EQ(a.log().find("lock table"), std::string::npos);  // room for one
}

}  // namespace
}  // namespace tp
