// The store's conformance suite: an answer (a `stop_on` event) already
// recorded stops the cadence's steps of a purchase planned after it, on
// SQLite and PostgreSQL alike: a purchase reported late is born with them
// cancelled, and a reload that adds a step to the cadence plans none for
// a buyer whose answer stopped it (docs/config.md, `stop_on`); in the
// daemon's ingest groups too.
#include "brief_config.h"
#include "store/conformance.h"

namespace tp::conformance {
namespace {

// The brief's config with the trust cadence stopped by a reply, and the
// same with a step more in it (day 5).
std::string StoppedConfig(bool with_mid_check) {
  std::string yaml(testing::kBriefConfig);
  const std::string trust =
      "    cancel_on_repurchase: true\n    steps:\n      - {after: 1d,  topic: how-to-wear";
  yaml.replace(
      yaml.find(trust), trust.size(),
      "    cancel_on_repurchase: true\n    stop_on: [replied]\n    steps:\n      - {after: "
      "1d,  topic: how-to-wear");
  if (with_mid_check) {
    const std::string at = "      - {after: 7d,  topic: care-tips}\n";
    yaml.replace(yaml.find(at), at.size(), "      - {after: 5d,  topic: mid-check}\n" + at);
  }
  return yaml;
}

std::string Outcome(const StatusOr<IngestOutcome>& out) {
  if (!out.ok()) return out.status().message();
  return "planned " + std::to_string(out->planned) + " cancelled " + std::to_string(out->cancelled);
}

template <typename Store>
std::vector<std::string> AnsweredFirst(Store& store, RulesInForce& rules) {
  std::vector<std::string> log;
  const Instant t0 = At("2026-11-10T10:00:00+08:00");
  FakeClock clock(t0);
  Scheduler scheduler(store, clock, rules);
  // b1 answered an hour ago; its purchase of two hours ago is reported now.
  auto replied = scheduler.RecordEvent({"e1", "b1", "replied", t0 - std::chrono::hours(1)});
  log.push_back(replied.ok() ? "reply cancelled " + std::to_string(replied->cancelled)
                             : replied.status().message());
  log.push_back("late " + Outcome(scheduler.Ingest(
                              {"o1", "b1", "daily", 2, 240, t0 - std::chrono::hours(2), "", ""})));
  // Not an answer made before the purchase: b2's came a day before it.
  EXPECT_TRUE(scheduler.RecordEvent({"e2", "b2", "replied", t0 - std::chrono::hours(24)}).ok());
  log.push_back("after " + Outcome(scheduler.Ingest({"o2", "b2", "daily", 2, 240, t0, "", ""})));
  // b3 buys now and answers on day 2: its trust steps are cancelled then.
  log.push_back("b3 " + Outcome(scheduler.Ingest({"o3", "b3", "daily", 2, 240, t0, "", ""})));
  clock.Set(t0 + std::chrono::hours(48));
  replied = scheduler.RecordEvent({"e3", "b3", "replied", clock.Now()});
  log.push_back(replied.ok() ? "b3 reply cancelled " + std::to_string(replied->cancelled)
                             : replied.status().message());

  // A reload adds a day-5 trust step: b2 gets it, b1 and b3 do not.
  const ReplanCounts counts =
      ReloadAndReplan(store, rules, testing::MustLoad(StoppedConfig(true)), clock.Now());
  log.push_back("re-plan added " + std::to_string(counts.added) + " cancelled " +
                std::to_string(counts.cancelled));
  for (const char* buyer : {"b1", "b2", "b3"}) {
    auto report = store.GetBuyer(buyer);
    EXPECT_TRUE(report.ok());
    if (!report.ok() || !*report) continue;
    for (const auto& t : (*report)->touchpoints) {
      log.push_back(std::string(buyer) + " " + t.cadence + "/" + t.topic + " " +
                    std::string(StateName(t.state)) + (t.reason.empty() ? "" : ": " + t.reason));
    }
  }
  return log;
}

// The same in the daemon's ingest groups (a store may read a request's
// buyers' events ahead, PrepareIngest): an answer committed before the
// group, and one recorded in the group after its purchases were prepared.
template <typename Store>
std::vector<std::string> AnsweredFirstInGroups(Store& store, RulesInForce& rules) {
  std::vector<std::string> log;
  const Instant t0 = At("2026-11-10T10:00:00+08:00");
  FakeClock clock(t0);
  Scheduler scheduler(store, clock, rules);
  EXPECT_TRUE(scheduler.RecordEvent({"e4", "b4", "replied", t0 - std::chrono::hours(1)}).ok());
  const std::vector<Purchase> purchases = {
      {"o4", "b4", "daily", 2, 240, t0 - std::chrono::hours(2), "", ""},
      {"o5", "b5", "daily", 2, 240, t0 - std::chrono::hours(2), "", ""}};
  EXPECT_TRUE(store.Begin().ok());
  EXPECT_TRUE(store.Savepoint().ok());
  EXPECT_TRUE(scheduler.PrepareIngest(purchases).ok());
  EXPECT_TRUE(scheduler.RecordEvent({"e5", "b5", "replied", t0 - std::chrono::hours(1)}).ok());
  for (const Purchase& p : purchases) {
    log.push_back(p.buyer_id + " " + Outcome(scheduler.Ingest(p)));
  }
  EXPECT_TRUE(store.Release().ok());
  EXPECT_TRUE(store.Commit().ok());
  return log;
}

TEST(StoreConformanceTest, AnAnswerAlreadyRecordedStopsThePlanOfALatePurchaseInAGroup) {
  auto rules = testing::MustLoad(StoppedConfig(false));
  const std::vector<std::string> expected = {"b4 planned 2 cancelled 4",
                                             "b5 planned 2 cancelled 4"};
  const auto [sqlite, pg] = OnBothStores(rules, [](auto& store, RulesInForce& in_force) {
    return AnsweredFirstInGroups(store, in_force);
  });
  EXPECT_EQ(sqlite, expected);
  EXPECT_EQ(pg, expected);
}

TEST(StoreConformanceTest, AnAnswerAlreadyRecordedStopsThePlanOfALatePurchaseAndOfAReload) {
  auto rules = testing::MustLoad(StoppedConfig(false));
  const auto [sqlite_log, pg_log] = OnBothStores(
      rules, [](auto& store, RulesInForce& in_force) { return AnsweredFirst(store, in_force); });
  const std::string b1 = ": buyer replied at 2026-11-10T01:00:00Z";
  const std::string b3 = ": buyer replied at 2026-11-12T02:00:00Z";
  const std::vector<std::string> expected = {
      "reply cancelled 0",
      "late planned 2 cancelled 4",  // the trust steps, at birth
      "after planned 6 cancelled 0",
      "b3 planned 6 cancelled 0",
      "b3 reply cancelled 4",
      "re-plan added 1 cancelled 0",  // b2's mid-check only
      "b1 trust/how-to-wear cancelled" + b1,
      "b1 trust/comfort-check cancelled" + b1,
      "b1 trust/care-tips cancelled" + b1,
      "b1 repurchase/trust-checkpoint pending",
      "b1 trust/style-ideas cancelled" + b1,
      "b1 repurchase/repurchase-reminder pending",
      "b2 trust/how-to-wear pending",
      "b2 trust/comfort-check pending",
      "b2 trust/mid-check pending",
      "b2 trust/care-tips pending",
      "b2 repurchase/trust-checkpoint pending",
      "b2 trust/style-ideas pending",
      "b2 repurchase/repurchase-reminder pending",
      "b3 trust/how-to-wear cancelled" + b3,
      "b3 trust/comfort-check cancelled" + b3,
      "b3 trust/care-tips cancelled" + b3,
      "b3 repurchase/trust-checkpoint pending",
      "b3 trust/style-ideas cancelled" + b3,
      "b3 repurchase/repurchase-reminder pending",
  };
  EXPECT_EQ(sqlite_log, expected);
  EXPECT_EQ(pg_log, expected);
}

}  // namespace
}  // namespace tp::conformance
