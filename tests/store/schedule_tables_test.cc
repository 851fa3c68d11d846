// The schedule in SQLite: purchases and buyers as ingest records them
// (store/schedule_tables.h), opt-out, and a reload's re-tiering.
#include "store/store_test.h"

namespace tp {
namespace {

TEST_F(SqliteStoreTest, ConflictAndDuplicateIncludeAttributes) {
  auto store = MustOpen();
  Purchase p{"o1",
             "b1",
             "daily",
             2,
             10.5,
             At("2026-11-01T10:00:00+08:00"),
             "Europe/Berlin",
             R"({"channel":"wecom"})"};
  ASSERT_TRUE(store->AddPurchase(p, FindZone("Europe/Berlin"), 0, {}, p.purchased_at).ok());
  EXPECT_EQ(Match(*store, p).kind, PurchaseMatch::Kind::kSame);
  Purchase other = p;
  other.attributes = R"({"channel":"sms"})";
  EXPECT_EQ(Match(*store, other).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, other).field, "attributes");
  other = p;
  other.quantity = 3;
  EXPECT_EQ(Match(*store, other).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, other).field, "quantity");
}

TEST_F(SqliteStoreTest, TheDefaultZoneSpeltOutIsTheSameTimezone) {
  auto store = MustOpen();
  Purchase p{"o1", "b1", "daily", 2, 10.5, At("2026-11-01T10:00:00+08:00"), ""};
  ASSERT_TRUE(store->AddPurchase(p, rules_->timezone, 0, {}, p.purchased_at).ok());
  Purchase spelt = p;
  spelt.timezone = "Asia/Shanghai";  // the config's default, which it was planned in
  EXPECT_EQ(Match(*store, spelt).kind, PurchaseMatch::Kind::kSame);
  spelt.timezone = "Europe/Berlin";
  EXPECT_EQ(Match(*store, spelt).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, spelt).field, "timezone");
}

// The daemon's store must decide exactly as simulate's: replay the brief's
// acceptance example through Scheduler + SqliteStore and compare every line.
TEST_F(SqliteStoreTest, BriefAcceptanceExampleMatchesSimulate) {
  LoadResult loaded = LoadRulesFile(std::string(TP_TEST_DATA) + "/brief/touchpoint.yaml");
  ASSERT_TRUE(loaded.errors.empty());
  auto& rules = InForce(loaded.rules);
  auto store = MustOpen(rules);
  std::ifstream csv(std::string(TP_TEST_DATA) + "/brief/brief-purchases.csv");
  std::string line;
  std::vector<std::string> fields;
  std::getline(csv, line);
  ASSERT_FALSE(SplitCsvLine(line, fields));
  auto parser = PurchaseRowParser::FromHeader(fields, *loaded.rules);
  ASSERT_TRUE(parser.ok());
  std::vector<Purchase> purchases;
  while (std::getline(csv, line)) {
    ASSERT_FALSE(SplitCsvLine(line, fields));
    ASSERT_FALSE(parser->Parse(fields, purchases.emplace_back()));
  }
  std::stable_sort(purchases.begin(), purchases.end(), [](const Purchase& a, const Purchase& b) {
    return a.purchased_at < b.purchased_at;
  });

  FakeClock clock(purchases.front().purchased_at);
  Scheduler scheduler(*store, clock, rules);
  auto run_until = [&](Instant until) {
    for (;;) {
      auto next = scheduler.NextWakeup();
      ASSERT_TRUE(next.ok());
      if (!*next || **next > until) break;
      clock.Set(std::max(clock.Now(), **next));
      ASSERT_TRUE(scheduler.RunDue().ok());
    }
  };
  std::set<std::string> buyers;
  for (const Purchase& p : purchases) {
    run_until(p.purchased_at);
    clock.Set(std::max(clock.Now(), p.purchased_at));
    ASSERT_TRUE(scheduler.Ingest(p).ok());
    buyers.insert(p.buyer_id);
  }
  run_until(At("2030-01-01T00:00:00Z"));

  std::map<std::string, nlohmann::json> got;
  for (const std::string& buyer : buyers) {
    auto report = store->GetBuyer(buyer);
    ASSERT_TRUE(report.ok() && report->has_value());
    for (const TouchpointRecord& t : (*report)->touchpoints) {
      const Zone* zone = FindZone(t.zone);
      got[t.order_id + "/" + t.topic] = {
          {"buyer_id", buyer},
          {"order_id", t.order_id},
          {"cadence", t.cadence},
          {"topic", t.topic},
          {"tier", t.tier},
          {"product", t.product},
          {"due_at", FormatRfc3339(t.due_at, zone)},
          {"fire_at", t.fire_at ? nlohmann::json(FormatRfc3339(*t.fire_at, zone)) : nullptr},
          {"status", std::string(StateName(t.state))}};
    }
  }
  std::ifstream expected(std::string(TP_TEST_DATA) + "/brief/brief-expected.jsonl");
  std::size_t lines = 0;
  while (std::getline(expected, line)) {
    auto want = nlohmann::json::parse(line);
    want.erase("id");
    const std::string key =
        want["order_id"].get<std::string>() + "/" + want["topic"].get<std::string>();
    ASSERT_TRUE(got.count(key)) << key;
    EXPECT_EQ(got[key], want) << key;
    ++lines;
  }
  EXPECT_EQ(lines, got.size());
  // Every touchpoint is final and has a history entry for how it got there.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints t WHERE NOT EXISTS (SELECT 1 FROM "
                  "touchpoint_history h WHERE h.touchpoint = t.id)"),
            0);
}

// A reload that changes a purchase's tier changes what is still pending,
// not what has fired: a queued event keeps the tier it fired with.
TEST_F(SqliteStoreTest, AFiredTouchpointKeepsItsTierWhenAReloadChangesThePurchases) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);
  auto before = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse((*before)[0].event)["data"]["tier"], "novice");

  std::string yaml(kBriefConfig);
  const std::string newbie = "{name: newbie, min_purchases: 2}";
  yaml.replace(yaml.find(newbie), newbie.size(), "{name: newbie, min_purchases: 1}");
  auto reloaded = testing::MustLoad(yaml);
  ASSERT_NE(reloaded, nullptr);
  rules_.Swap(reloaded);
  ReplanAll(*store, *reloaded, clock.Now());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE tier = 'newbie'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE tier IS NOT NULL"), 1);

  clock.Advance(std::chrono::seconds(31));
  auto after = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].event, (*before)[0].event);
  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  EXPECT_EQ((*report)->tier, "newbie");
  for (const auto& t : (*report)->touchpoints) {
    EXPECT_EQ(t.tier, t.state == TouchpointState::kFired ? "novice" : "newbie") << t.topic;
  }
}

TEST_F(SqliteStoreTest, OptOutSuppressesWithHistoryAndPersists) {
  {
    auto store = MustOpen();
    FakeClock clock(At("2026-11-01T10:00:00+08:00"));
    Scheduler scheduler(*store, clock, rules_);
    ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 1, 10, clock.Now(), ""}).ok());
    ASSERT_TRUE(scheduler.OptOut("b1").ok());
  }
  auto store = MustOpen();
  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  EXPECT_TRUE((*report)->opted_out);
  ASSERT_EQ((*report)->touchpoints.size(), 6u);
  for (const auto& t : (*report)->touchpoints) {
    EXPECT_EQ(t.state, TouchpointState::kSuppressed);
    EXPECT_EQ(t.reason, "opted out");
    ASSERT_EQ(t.history.size(), 1u);
  }
  EXPECT_EQ(*store->NextWakeup(), std::nullopt);
}

}  // namespace
}  // namespace tp
