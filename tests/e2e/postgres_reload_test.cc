// Reloads with several daemons on one PostgreSQL database, end to end:
// the daemons share one re-plan sweep, and each one's firing waits for
// it, however the reloads are spread over time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "postgres_fixture.h"
#include "store/pg_store.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using testing::PgServer;

// /healthz's config.replan once `pred` holds of it (or after `within`).
template <typename Pred>
json AwaitReplan(DaemonProcess& d, Pred pred,
                 std::chrono::milliseconds within = std::chrono::seconds(5)) {
  json replan;
  for (auto i = within / 50; i.count() > 0; --i) {
    const json health = d.Call("GET", "/healthz").second;
    replan = health["config"].value("replan", json::object());
    if (pred(replan)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return replan;
}

// The outbox's messages at the first lease that has any (within `within`).
json LeaseOnceAny(DaemonProcess& d, std::chrono::milliseconds within = std::chrono::seconds(5)) {
  json messages = json::array();
  for (auto i = within / 50; i.count() > 0 && messages.empty(); --i) {
    messages = d.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}}).second["messages"];
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return messages;
}

// Daemon a is reloaded to new rules and finishes its re-plan; daemon b,
// still on the old rules, then takes a purchase by them, and is reloaded
// too, which starts the shared sweep again. a follows that restart within
// a second (docs/scaling.md): while the sweep cannot pass the purchase
// (another writer holds its buyer's turn), neither daemon fires it, though
// it is due; once the turn is free, it is re-planned and fires by the new
// rules. Before, a, done with its own re-plan, fired the old rules' step
// when it came due. (The step is due 6 s after the purchase: time for the
// follow on a loaded machine.)
TEST_F(PostgresDaemonTest, AFinishedDaemonFollowsALaterReloadsReplan) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string old_rules = testing::TestConfig().Step("6s", "old").Yaml();
  const std::string new_rules = testing::TestConfig().Step("6s", "new").Yaml();
  DaemonProcess& a = Start(old_rules, db->url(), 0);
  DaemonProcess& b = Start(old_rules, db->url(), 1);

  testing::WriteFile(Path("touchpoint.yaml"), new_rules);
  a.Signal(SIGHUP);
  json replan = AwaitReplan(a, [](const json& r) { return r.value("state", "") == "done"; });
  ASSERT_EQ(replan.value("state", ""), "done") << a.log();

  const auto bought = std::chrono::steady_clock::now();
  ASSERT_EQ(b.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  const RulesInForce rules(testing::MustLoad(new_rules));
  auto other = PgStore::Open(db->url(), rules, "another-writer");
  ASSERT_TRUE(other.ok()) << other.status().message();
  ASSERT_TRUE((*other)->Begin().ok());
  ASSERT_TRUE((*other)->TakeBuyersTurns(std::vector<std::string>{"b1"}).ok());

  b.Signal(SIGHUP);
  replan = AwaitReplan(b, [](const json& r) { return r.value("state", "") == "running"; });
  ASSERT_EQ(replan.value("state", ""), "running") << b.log();
  // a was done: running again is the follow.
  replan = AwaitReplan(
      a, [](const json& r) { return r.value("state", "") == "running"; }, std::chrono::seconds(3));
  EXPECT_EQ(replan.value("state", ""), "running") << a.log();
  ASSERT_LT(std::chrono::steady_clock::now() - bought, std::chrono::seconds(6))
      << "too slow to see a follow before the purchase fell due";

  // Due now, and held by the sweep on both daemons.
  std::this_thread::sleep_until(bought + std::chrono::milliseconds(7500));
  for (DaemonProcess* d : {&a, &b}) {
    auto [status, body] = d->Call("POST", "/v1/queues/outbox/lease", {{"max", 10}});
    ASSERT_EQ(status, 200) << body;
    EXPECT_TRUE(body["messages"].empty()) << body << "\n" << a.log();
  }

  ASSERT_TRUE((*other)->Rollback().ok());
  const json messages = LeaseOnceAny(a);
  ASSERT_EQ(messages.size(), 1u) << messages;
  EXPECT_EQ(messages[0]["event"]["data"]["topic"], "new") << messages;
  for (DaemonProcess* d : {&a, &b}) {
    EXPECT_EQ(AwaitReplan(*d, [](const json& r) { return r.value("state", "") == "done"; })
                  .value("state", ""),
              "done")
        << d->log();
  }
  EXPECT_THAT(a.log(), ::testing::HasSubstr("another daemon started a re-plan to these rules"));
}

// A reload whose record of the re-plan cannot wait for the step under way
// (it waits 50 ms on the loop, the first step 500 ms; here another daemon's step holds the sweep
// for 2 s, as on a busy server) is still a reload: the new rules are in force, the re-plan's first
// step records it, and nothing fires by the old rules meanwhile. Before, the reload failed and the
// old rules stayed.
TEST_F(PostgresDaemonTest, AReloadWhoseReplanCannotBeRecordedYetStillReloads) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string old_rules = testing::TestConfig().Step("1s", "old").Yaml();
  const std::string new_rules = testing::TestConfig().Step("1s", "new").Yaml();
  DaemonProcess& a = Start(old_rules, db->url(), 0);
  ASSERT_EQ(a.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);

  auto step_under_way = pg::Connection::Open(db->url(), "test");
  step_under_way->Exec("BEGIN");
  step_under_way->Exec("SELECT pg_advisory_xact_lock(7305861230004)");
  testing::WriteFile(Path("touchpoint.yaml"), new_rules);
  a.Signal(SIGHUP);
  json replan = AwaitReplan(a, [](const json& r) { return r.value("failures", 0) > 0; });
  EXPECT_EQ(replan.value("state", ""), "running") << a.log();
  const json health = a.Call("GET", "/healthz").second;
  EXPECT_TRUE(health["config"]["last_reload"].value("ok", false)) << health;
  // Due, and held: the rules it was planned by are not those in force.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto [status, body] = a.Call("POST", "/v1/queues/outbox/lease", {{"max", 10}});
  ASSERT_EQ(status, 200) << body;
  EXPECT_TRUE(body["messages"].empty()) << body << "\n" << a.log();

  step_under_way->Exec("COMMIT");
  replan = AwaitReplan(a, [](const json& r) { return r.value("state", "") == "done"; });
  ASSERT_EQ(replan.value("state", ""), "done") << a.log();
  const json messages = LeaseOnceAny(a);
  ASSERT_EQ(messages.size(), 1u) << messages;
  EXPECT_EQ(messages[0]["event"]["data"]["topic"], "new") << messages;
  EXPECT_THAT(a.log(), ::testing::HasSubstr("cannot record the re-plan yet"));
}

// A restart onto new rules, one daemon at a time: a starts on them and
// re-plans to them; b, still on the old ones, takes a purchase by them
// after that re-plan, and is stopped (as a rolling restart would, before
// starting it on the new rules). Once no daemon on other rules has said so
// for 5 s, a starts the sweep again, and the purchase fires by the new
// rules. Before, nothing re-planned it: it fired by the old ones.
TEST_F(PostgresDaemonTest, APurchaseTakenByADaemonOnOldRulesIsReplannedOnceItIsGone) {
  auto db = PgServer::Shared().NewDatabase();
  const std::string old_rules = testing::TestConfig().Step("15s", "old").Yaml();
  const std::string new_rules = testing::TestConfig().Step("15s", "new").Yaml();
  DaemonProcess& b = Start(old_rules, db->url(), 1);
  DaemonProcess& a = Start(new_rules, db->url(), 0);
  json replan = AwaitReplan(a, [](const json& r) { return r.value("state", "") == "done"; });
  ASSERT_EQ(replan.value("state", ""), "done") << a.log();
  ASSERT_TRUE(Eventually(
      [&] {
        return b.log().find("another daemon recorded other planning rules") != std::string::npos;
      },
      std::chrono::seconds(5)))
      << b.log();

  ASSERT_EQ(b.Call("POST", "/v1/purchases", PurchaseBody("o1", "b1", Ago({}))).first, 200);
  b.Signal(SIGTERM);
  ASSERT_TRUE(b.WaitFor(std::chrono::seconds(30)).has_value()) << b.log();

  const json messages = LeaseOnceAny(a, std::chrono::seconds(25));
  ASSERT_EQ(messages.size(), 1u) << messages << "\n" << a.log();
  EXPECT_EQ(messages[0]["event"]["data"]["topic"], "new") << messages;
  EXPECT_THAT(a.log(), ::testing::HasSubstr("purchases were planned by a daemon on other rules"));
}

}  // namespace
}  // namespace tp
