// The store's conformance suite, the other interfaces: leases and acks,
// push deliveries, dead letters, a re-plan, timelines and retention on
// SQLite and PostgreSQL alike, mid-scenario.
#include "brief_config.h"
#include "store/conformance.h"

namespace tp::conformance {
namespace {

// The other interfaces on a store mid-scenario: leases and acks, push
// deliveries with every outcome, dead letters and their replay, the
// counts, a re-plan to changed rules, every buyer's timeline, retention.
// What each call answers, in order (receipts aside: they are random).
template <typename Store>
std::vector<std::string> Operate(Store& store, RulesInForce& rules,
                                 std::shared_ptr<const Rules> changed, Instant now) {
  std::vector<std::string> log;
  auto must = [](const auto& result) {
    EXPECT_TRUE(result.ok()) << result.status().message();
    return result.ok();
  };
  for (const std::string queue : {"wecom", "advisor", "email"}) {
    auto leased = store.Lease(queue, 40, std::chrono::seconds(30), now);
    if (!must(leased)) continue;
    std::vector<std::string> receipts;
    for (const LeasedMessage& m : *leased) {
      log.push_back(queue + " leased: " + m.event + " deliveries " + std::to_string(m.deliveries));
      if (receipts.size() * 2 < leased->size()) receipts.push_back(m.receipt);
    }
    receipts.push_back("1.notareceipt");
    receipts.push_back(std::string("1.00\0ff", 7));  // a NUL (\u0000 in the JSON)
    // Sent under another queue's name, they ack nothing.
    auto elsewhere = store.Ack(queue == "wecom" ? "advisor" : "wecom", receipts, now);
    if (must(elsewhere)) {
      EXPECT_EQ(*elsewhere, 0) << queue;
    }
    auto acked = store.Ack(queue, receipts, now);
    if (must(acked)) log.push_back(queue + " acked " + std::to_string(*acked));
    auto depth = store.QueueDepth(queue);
    if (must(depth)) log.push_back(queue + " depth " + std::to_string(*depth));
  }
  auto due = store.DueDeliveries("events", now, 30, true);
  if (must(due)) {
    std::vector<DeliveryResult> results;
    for (std::size_t i = 0; i < due->size(); ++i) {
      const OutboxItem& item = (*due)[i];
      log.push_back("events due: " + item.touchpoint_id + " " + item.event);
      DeliveryResult r;
      r.id = item.id;
      r.touchpoint = item.touchpoint;
      r.at = now;
      r.attempts = item.attempts + 1;
      r.kind = static_cast<DeliveryResult::Kind>(i % 3);
      r.next_attempt_at = now + std::chrono::hours(1);
      r.error = "HTTP 500";
      r.history = "attempt " + std::to_string(i % 3);
      results.push_back(r);
    }
    Status recorded = store.RecordDeliveries(results);
    EXPECT_TRUE(recorded.ok()) << recorded.message();
  }
  auto next = store.NextDeliveryAfter("events", now);
  if (must(next) && *next) log.push_back("events next " + FormatRfc3339(**next, UtcZone()));
  auto dead = store.DeadLetters("", 0, 100);
  if (must(dead)) {
    for (const DeadLetter& d : *dead) {
      log.push_back("dead: " + d.sink + " " + d.touchpoint_id + " " + d.last_error + " " +
                    std::to_string(d.attempts));
    }
    if (!dead->empty()) {
      // Twice (a retry whose answer was lost: it waits already), and an
      // unknown id.
      for (std::int64_t id : {(*dead)[0].id, (*dead)[0].id, std::int64_t{1'000'000}}) {
        auto one = store.ReplayDeadLetter(id, now);
        if (!must(one)) continue;
        using ReplayedOne = OutboxStore::ReplayedOne;
        log.push_back(std::string("replay one: ") + (*one == ReplayedOne::kReplayed  ? "replayed"
                                                     : *one == ReplayedOne::kWaiting ? "waiting"
                                                                                     : "unknown"));
      }
    }
    // None that died after a replay began (here: died at `now`).
    auto none = store.ReplayDeadLettersAfter("", 0, now - std::chrono::milliseconds(1), 100, now);
    if (must(none)) {
      EXPECT_EQ(none->last_id, 0);
      log.push_back("replayed what died before " + std::to_string(none->replayed) + " " +
                    std::to_string(none->last_id));
    }
    // The rest in steps: one, then the others, then none.
    std::int64_t after = 0;
    for (int limit : {1, 100, 100}) {
      auto step = store.ReplayDeadLettersAfter("", after, now, limit, now);
      if (!must(step)) break;
      const bool second = dead->size() > 1 && step->last_id == (*dead)[1].id;
      log.push_back("replayed a step " + std::to_string(step->replayed) +
                    (second ? " up to the second" : ""));
      if (step->last_id > 0) after = step->last_id;
    }
  }
  // All, then counted up to 2.
  for (std::int64_t limit : {1'000'000, 2}) {
    auto by_sink = store.OutboxBySink(limit);
    if (!must(by_sink)) continue;
    for (const auto& [sink, n] : *by_sink) log.push_back(sink + " outbox " + std::to_string(n));
  }
  auto depth = store.OutboxDepth("events");
  auto dead_count = store.DeadLetterCount("events");
  auto pending = store.PendingCount();
  if (must(depth) && must(dead_count) && must(pending)) {
    log.push_back("counts " + std::to_string(*depth) + " " + std::to_string(*dead_count) + " " +
                  std::to_string(*pending));
  }

  rules.Swap(changed);
  Status planning_set = store.SetPlanning(PlanningFingerprint(*changed), true);
  EXPECT_TRUE(planning_set.ok()) << planning_set.message();
  // Steps as short as can be (how much a step does is the store's own
  // business: PostgreSQL's re-plans a read of rows' buyers at once); what
  // they came to in all.
  ReplanCounts replanned;
  std::int64_t buyers = 0;
  for (int i = 0; i < 1000; ++i) {
    auto step = store.ReplanSome(ReplanPurchase, PlanningFingerprint(*changed),
                                 std::chrono::steady_clock::now(), now);
    if (!must(step)) break;
    replanned.Add(step->counts);
    buyers += step->buyers;
    if (step->done) break;
  }
  log.push_back("replanned " + std::to_string(replanned.moved) + " " +
                std::to_string(replanned.updated) + " " + std::to_string(replanned.added) + " " +
                std::to_string(replanned.cancelled) + " of " + std::to_string(buyers) + " buyers");
  for (const auto& [cadence, n] : replanned.added_by_cadence) {
    log.push_back("added to " + cadence + ": " + std::to_string(n));
  }
  for (const auto& [cadence, n] : replanned.cancelled_by_cadence) {
    log.push_back("cancelled of " + cadence + ": " + std::to_string(n));
  }
  EXPECT_GT(replanned.moved + replanned.added + replanned.cancelled, 0);
  auto planning = store.Planning();
  if (must(planning)) {
    EXPECT_FALSE(planning->replanning);
  }

  for (int b = 0; b < 80; ++b) {
    const std::string buyer = "buyer-" + std::to_string(b);
    auto report = store.GetBuyer(buyer);
    if (!must(report) || !report->has_value()) continue;
    const BuyerReport& r = **report;
    const auto pending_of =
        std::count_if(r.touchpoints.begin(), r.touchpoints.end(),
                      [](const auto& t) { return t.state == TouchpointState::kPending; });
    std::string line = buyer + " " + r.tier + (r.opted_out ? " opted out" : "") + " pending " +
                       std::to_string(pending_of);
    for (const PurchaseRecord& p : r.purchases) {
      line += " | " + p.purchase.order_id + " " + p.zone + " " + p.tier;
    }
    for (const TouchpointRecord& t : r.touchpoints) {
      line += " | " + t.id + " " + t.topic + " " + t.tier + " " + std::string(StateName(t.state)) +
              " " + t.reason + " " + FormatRfc3339(t.next_at, UtcZone());
      for (const Transition& h : t.history) {
        line += " / " + FormatRfc3339(h.at, UtcZone()) + " " + std::string(StateName(h.state)) +
                " " + h.reason;
      }
    }
    log.push_back(line);
    // The last purchase alone: its touchpoints, and how many are left out.
    auto last = store.GetBuyer(buyer, 1);
    if (!must(last) || !last->has_value()) continue;
    const BuyerReport& l = **last;
    EXPECT_EQ(l.earlier_purchases + static_cast<std::int64_t>(l.purchases.size()),
              static_cast<std::int64_t>(r.purchases.size()))
        << buyer;
    EXPECT_EQ(l.tier, r.tier) << buyer;
    line = buyer + " last, " + std::to_string(l.earlier_purchases) + " earlier";
    for (const PurchaseRecord& p : l.purchases) line += " | " + p.purchase.order_id;
    for (const TouchpointRecord& t : l.touchpoints) {
      EXPECT_EQ(t.order_id, l.purchases.back().purchase.order_id) << buyer;
      line += " | " + t.id + " " + std::to_string(t.history.size());
    }
    log.push_back(line);
  }
  std::int64_t pruned = 0;
  for (std::int64_t after = 0;;) {
    auto step = store.PruneFinished(now - std::chrono::hours(24 * 20), after, 500);
    if (!must(step)) break;
    pruned += step->deleted;
    after = step->next;
    if (step->done) break;
  }
  log.push_back("pruned " + std::to_string(pruned));
  return log;
}

TEST(StoreConformanceTest, TheOtherInterfacesAgreeToo) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  std::string yaml;
  {
    std::ifstream in(TP_PLAYBOOK_CONFIG);
    yaml.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // A step moved, one added and one removed: the re-plan moves, adds and
  // cancels.
  auto changed_yaml = [&] {
    std::string y = yaml;
    auto replace = [&](const std::string& from, const std::string& to) {
      const auto at = y.find(from);
      EXPECT_NE(at, std::string::npos) << from;
      if (at != std::string::npos) y.replace(at, from.size(), to);
    };
    replace("{after: 3d, topic: comfort-check", "{after: 4d, topic: comfort-check");
    replace("      - {after: 7d, topic: care-tips}\n",
            "      - {after: 7d, topic: care-tips}\n      - {after: 8d, topic: fit-check}\n");
    replace("      - {after: 60d, topic: yearly-cleaning, sinks: [email]}\n", "");
    return y;
  }();
  auto changed = testing::MustLoad(changed_yaml);
  ASSERT_NE(changed, nullptr);
  const std::vector<Item> items = Scenario(*rules, 80);
  const Instant mid = items[items.size() / 2].at;
  std::vector<Item> first_half(items.begin(),
                               items.begin() + static_cast<std::ptrdiff_t>(items.size() / 2));

  TempDir dir;
  const std::string path = dir.path() + "/tp.db";
  RulesInForce sqlite_rules(rules), pg_rules(rules);
  std::vector<std::string> sqlite_log, pg_log;
  {
    auto store = SqliteStore::Open(path, sqlite_rules);
    ASSERT_TRUE(store.ok()) << store.status().message();
    RunScenario(**store, store->get(), sqlite_rules, first_half, mid);
    sqlite_log = Operate(**store, sqlite_rules, changed, mid);
  }
  auto db = PgServer::Shared().NewDatabase();
  {
    auto store = PgStore::Open(db->url(), pg_rules);
    ASSERT_TRUE(store.ok()) << store.status().message();
    RunScenario(**store, store->get(), pg_rules, first_half, mid);
    pg_log = Operate(**store, pg_rules, changed, mid);
  }
  auto count = [&](const std::string& needle) {
    return std::count_if(sqlite_log.begin(), sqlite_log.end(), [&](const std::string& line) {
      return line.find(needle) != std::string::npos;
    });
  };
  EXPECT_GT(count("leased: {"), 10);
  EXPECT_GT(count("events due: "), 2);
  EXPECT_GT(count("dead: events"), 0);
  EXPECT_EQ(count("replay one: replayed"), 1);
  // More than two wait; counted up to two, two.
  std::vector<long> outbox;
  for (const std::string& line : sqlite_log) {
    if (line.rfind("events outbox ", 0) == 0) outbox.push_back(std::stol(line.substr(14)));
  }
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_GT(outbox[0], 2);
  EXPECT_EQ(outbox[1], 2);
  EXPECT_EQ(count("replay one: waiting"), 1);
  EXPECT_EQ(count("replay one: unknown"), 1);
  EXPECT_GT(count("rules changed"), 0) << "the re-plan moved nothing";
  EXPECT_GT(count("added to "), 0) << "the re-plan added nothing";
  EXPECT_GT(count("cancelled of "), 0) << "the re-plan cancelled nothing";
  EXPECT_EQ(count("pruned 0"), 0);
  for (std::size_t i = 0; i < std::min(sqlite_log.size(), pg_log.size()); ++i) {
    ASSERT_EQ(pg_log[i], sqlite_log[i]) << "line " << i;
  }
  ASSERT_EQ(pg_log.size(), sqlite_log.size());
  ExpectTheReadersAgree(path, db->url(), *changed, mid);
  for (const char* query : kTables) {
    const auto sqlite_rows = SqliteRows(path, query);
    const auto pg_rows = PgRows(db->url(), query);
    ASSERT_EQ(pg_rows.size(), sqlite_rows.size()) << query;
    for (std::size_t i = 0; i < pg_rows.size(); ++i) {
      ASSERT_EQ(pg_rows[i], sqlite_rows[i]) << query;
    }
  }
}

// Retention and a re-plan, on both stores: a purchase's finished steps are
// kept while another of its steps is pending, so a re-plan that moves a
// fired step from the past into the future finds it fired, instead of
// missing (a step the new rules add) and plans it again: sent twice.
// Once nothing of the purchase is pending, they go.
template <typename Store>
std::vector<std::string> PruneAndReplan(Store& store, RulesInForce& rules) {
  std::vector<std::string> log;
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(store, clock, rules);
  EXPECT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  for (const char* day : {"2026-11-02T10:00:00+08:00", "2026-11-04T10:00:00+08:00"}) {
    clock.Set(At(day));
    EXPECT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear, then comfort-check
  }
  auto leased = store.Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  EXPECT_TRUE(leased.ok() && leased->size() == 2u);
  std::vector<std::string> receipts;
  for (const LeasedMessage& m : leased.ok() ? *leased : std::vector<LeasedMessage>{}) {
    receipts.push_back(m.receipt);
  }
  auto acked = store.Ack("outbox", receipts, clock.Now());
  EXPECT_TRUE(acked.ok() && *acked == 2);
  auto prune = [&](const char* cutoff) {
    auto step = store.PruneFinished(At(cutoff), 0, 1000);
    EXPECT_TRUE(step.ok() && step->done);
    log.push_back("pruned " + std::to_string(step.ok() ? step->deleted : -1));
  };
  prune("2026-11-20T00:00:00+08:00");  // both fired steps are past it

  // comfort-check moves from day 3 to day 5, after now.
  std::string yaml(testing::kBriefConfig);
  const std::string from = "{after: 3d,  topic: comfort-check}";
  yaml.replace(yaml.find(from), from.size(), "{after: 5d,  topic: comfort-check}");
  const ReplanCounts counts = ReloadAndReplan(store, rules, testing::MustLoad(yaml), clock.Now());
  log.push_back("added " + std::to_string(counts.added));
  clock.Set(At("2026-11-07T10:00:00+08:00"));
  auto fired = scheduler.RunDue();
  log.push_back("fired on day 6 " + std::to_string(fired.ok() ? fired->fired : 0));  // none

  // Opted out: the rest suppressed, nothing of the purchase pending.
  EXPECT_TRUE(scheduler.OptOut("b1").ok());
  prune("2026-12-15T00:00:00+08:00");
  return log;
}

TEST(StoreConformanceTest, ARePlanNeverPlansAgainAStepRetentionHasPruned) {
  auto brief = testing::MustLoad(testing::kBriefConfig);
  const std::vector<std::string> expected = {"pruned 0", "added 0", "fired on day 6 0", "pruned 6"};
  const auto [sqlite, pg] = OnBothStores(
      brief, [](auto& store, RulesInForce& rules) { return PruneAndReplan(store, rules); });
  EXPECT_EQ(sqlite, expected);
  EXPECT_EQ(pg, expected);
}

}  // namespace
}  // namespace tp::conformance
