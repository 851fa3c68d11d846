// The store's conformance suite's parts (conformance_test.cc,
// conformance_interfaces_test.cc): one scenario of purchases, events and
// opt-outs; a store that writes down what the scheduler is handed and
// decides; the scenario run on any backend; the tables of the two
// databases as text; the two readers compared.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <random>
#include <set>
#include <utility>

#include "core/ids.h"
#include "forwarding_store.h"
#include "harness.h"
#include "outcomes/report_json.h"
#include "pg_server.h"
#include "planner/planner.h"
#include "planner/replan.h"
#include "scheduler/memory_store.h"
#include "scheduler/scheduler.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"
#include "store/reader_await.h"
#include "store/sqlite_store.h"
#include "store/store_reader.h"
#include "temp_dir.h"

namespace tp::conformance {

using testing::At;
using testing::Await;
using ::testing::HasSubstr;
using testing::PgServer;
using testing::TempDir;

// The playbook (tiers, caps scoped to sinks, steps with sinks of their
// own, `when`, stop_on), with a Redis sink on the reorder cadence so fires
// write outbox entries too.
inline std::shared_ptr<const Rules> ScenarioRules() {
  LoadResult loaded = LoadRulesFile(TP_PLAYBOOK_CONFIG);
  EXPECT_TRUE(loaded.errors.empty());
  std::ifstream in(TP_PLAYBOOK_CONFIG);
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string sinks = "  - {name: email, type: queue}\n";
  yaml.replace(yaml.find(sinks), sinks.size(),
               sinks + "  - {name: events, type: redis, url: \"redis://127.0.0.1:9/0\"}\n");
  const std::string routed = "    sinks: [wecom]\n";
  const auto at = yaml.find(routed, yaml.find("repurchase-reminder") - 400);
  yaml.replace(at, routed.size(), "    sinks: [wecom, events]\n");
  return testing::MustLoad(yaml);
}

// What happens, in time order: purchases (some sent twice, one changed),
// engagement events (some naming their touchpoint), opt-outs.
struct Item {
  enum class Kind { kPurchase, kEvent, kOptOut } kind;
  Instant at;
  Purchase purchase;
  EngagementEvent event;
};

inline std::vector<Item> Scenario(const Rules& rules, int buyers) {
  std::mt19937 rng(20261204);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const char* zones[] = {"", "Europe/Berlin", "America/New_York", "Asia/Shanghai"};
  const Instant start = At("2026-11-01T00:00:00Z");
  std::vector<Item> items;
  for (int b = 0; b < buyers; ++b) {
    const std::string buyer = "buyer-" + std::to_string(b);
    const std::string zone = zones[b % 4];
    Instant t = start + std::chrono::minutes(pick(0, 5 * 24 * 60));
    const int purchases = pick(1, 4);
    for (int n = 0; n < purchases; ++n) {
      Purchase p{"order-" + std::to_string(b) + "-" + std::to_string(n),
                 buyer,
                 pick(0, 4) == 0 ? "yearly" : "daily",
                 pick(1, 3),
                 static_cast<double>(pick(100, 900)) + 0.5,
                 t,
                 zone,
                 pick(0, 2) == 0 ? R"({"style":"natural"})" : ""};
      items.push_back({Item::Kind::kPurchase, t + std::chrono::seconds(pick(0, 600)), p, {}});
      if (pick(0, 9) == 0) {  // sent again, as it was
        items.push_back({Item::Kind::kPurchase, t + std::chrono::hours(1), p, {}});
      }
      if (pick(0, 19) == 0) {  // sent again, changed
        Purchase changed = p;
        changed.quantity += 1;
        items.push_back({Item::Kind::kPurchase, t + std::chrono::hours(2), changed, {}});
      }
      const int events = pick(0, 3);
      for (int e = 0; e < events; ++e) {
        EngagementEvent ev{
            "event-" + std::to_string(b) + "-" + std::to_string(n) + "-" + std::to_string(e), buyer,
            rules
                .engagement_types[static_cast<std::size_t>(
                    pick(0, static_cast<int>(rules.engagement_types.size()) - 1))]
                .name,
            t + std::chrono::hours(pick(1, 14 * 24))};
        if (pick(0, 2) == 0) {
          const Cadence& c = rules.cadences[0];
          ev.touchpoint_id = TouchpointId(p.order_id, c.name, c.steps[0].id);
        }
        items.push_back({Item::Kind::kEvent, ev.at + std::chrono::minutes(pick(0, 90)), {}, ev});
      }
      t += std::chrono::hours(24 * pick(10, 40) + pick(0, 23));
    }
    if (b % 17 == 5) {
      Item out{Item::Kind::kOptOut, start + std::chrono::hours(24 * pick(5, 60)), {}, {}};
      out.purchase.buyer_id = buyer;
      items.push_back(out);
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.at < b.at; });
  return items;
}

// A store that writes down what the scheduler is handed and decides.
class Recorder final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::vector<std::string> log;

  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override {
    for (std::size_t i = 0; i < due.size(); ++i) {
      const TouchpointView& v = due[i].view;
      const FiringOutcome& o = outcomes[i];
      log.push_back(std::string(v.buyer_id) + " " + std::string(v.cadence) + "/" +
                    std::string(v.step) + " due " + FormatRfc3339(v.due_at, UtcZone()) + " at " +
                    FormatRfc3339(v.next_at, UtcZone()) + ": " +
                    std::to_string(static_cast<int>(o.kind)) + " " +
                    FormatRfc3339(o.at, UtcZone()) + " " + o.reason);
    }
    return ForwardingStore::ApplyOutcomes(due, outcomes);
  }
};

// The scenario's items in groups as RunScenario() records them: each
// event or opt-out alone, runs of up to `batch` purchases together.
inline std::vector<std::pair<std::size_t, std::size_t>> Groups(const std::vector<Item>& items,
                                                               std::size_t batch) {
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  for (std::size_t first = 0; first < items.size();) {
    std::size_t last = first + 1;
    if (items[first].kind == Item::Kind::kPurchase) {
      while (last < items.size() && last - first < batch &&
             items[last].kind == Item::Kind::kPurchase) {
        ++last;
      }
    }
    groups.emplace_back(first, last);
    first = last;
  }
  return groups;
}

// Runs the scenario on `store` (with `txn`, each item in a group as the
// daemon's batcher writes it, with runs of up to `batch` purchases in one
// group, prepared at once, as one request of that many): the scheduler's
// decisions, and what each item came to. The scheduler fires before each
// group, up to its first item's time.
// The scenario runs on to `end` (by default, until nothing is pending).
inline std::vector<std::string> RunScenario(ScheduleStore& store, Transactions* txn,
                                            const RulesInForce& rules,
                                            const std::vector<Item>& items,
                                            std::optional<Instant> end = std::nullopt,
                                            std::size_t batch = 1) {
  Recorder recorder(store);
  FakeClock clock(items.front().at);
  Scheduler scheduler(recorder, clock, rules);
  std::vector<std::string> log;
  auto run_until = [&](Instant until) {
    for (;;) {
      auto next = scheduler.NextWakeup();
      EXPECT_TRUE(next.ok()) << next.status().message();
      if (!next.ok() || !*next || **next > until) break;
      clock.Set(std::max(clock.Now(), **next));
      auto ran = scheduler.RunDue();
      EXPECT_TRUE(ran.ok()) << ran.status().message();
      if (!ran.ok()) break;
    }
  };
  auto record = [&](const Item& item) -> std::string {
    switch (item.kind) {
      case Item::Kind::kPurchase: {
        auto out = scheduler.Ingest(item.purchase);
        EXPECT_TRUE(out.ok()) << out.status().message();
        if (!out.ok()) return "";
        return item.purchase.order_id + ": " + std::to_string(static_cast<int>(out->kind)) +
               " tier " + std::to_string(out->tier) + " planned " + std::to_string(out->planned) +
               " skipped " + std::to_string(out->skipped) + " cancelled " +
               std::to_string(out->cancelled);
      }
      case Item::Kind::kEvent: {
        auto out = scheduler.RecordEvent(item.event);
        EXPECT_TRUE(out.ok()) << out.status().message();
        if (!out.ok()) return "";
        return item.event.event_id + ": " + std::to_string(static_cast<int>(out->kind)) +
               " cancelled " + std::to_string(out->cancelled) + " credited " +
               (out->credited != 0 ? "yes" : "no");
      }
      case Item::Kind::kOptOut:
        EXPECT_TRUE(scheduler.OptOut(item.purchase.buyer_id).ok());
        return item.purchase.buyer_id + ": opted out";
    }
    return "";
  };
  for (auto [first, last] : Groups(items, batch)) {
    std::vector<Purchase> purchases;
    for (std::size_t i = first; i < last; ++i) {
      if (items[i].kind == Item::Kind::kPurchase) purchases.push_back(items[i].purchase);
    }
    run_until(items[first].at);
    if (txn != nullptr) {
      EXPECT_TRUE(txn->Begin().ok());
      EXPECT_TRUE(txn->Savepoint().ok());
      Status prepared = scheduler.PrepareIngest(purchases);
      EXPECT_TRUE(prepared.ok()) << prepared.message();
    }
    for (std::size_t i = first; i < last; ++i) {
      clock.Set(std::max(clock.Now(), items[i].at));
      log.push_back(record(items[i]));
    }
    if (txn != nullptr) {
      Status released = txn->Release();
      EXPECT_TRUE(released.ok()) << released.message();
      Status committed = txn->Commit();
      EXPECT_TRUE(committed.ok()) << committed.message();
    }
  }
  run_until(end.value_or(items.back().at + std::chrono::hours(24 * 400)));
  log.insert(log.end(), recorder.log.begin(), recorder.log.end());
  return log;
}

// A table's rows as text, in id order; booleans as 0/1 and amounts in
// thousandths on both sides.
inline constexpr const char* kTables[] = {
    "SELECT id, buyer_id, CAST(opted_out AS INTEGER), created_at FROM buyers ORDER BY id",
    "SELECT id, order_id, buyer, product, quantity, CAST(amount * 1000 AS INTEGER), "
    "purchased_at, timezone, zone, tier, attributes, received_at FROM purchases ORDER BY id",
    "SELECT id, purchase, buyer, cadence, step, topic, cadence_order, step_order, "
    "CAST(cancel_on_repurchase AS INTEGER), state, due_at, next_at, fire_at, reason, tier, sinks "
    "FROM touchpoints ORDER BY id",
    "SELECT touchpoint, at, state, reason FROM touchpoint_history ORDER BY touchpoint, at, state, "
    "reason",
    // (Receipts are random: whether a message has one.)
    "SELECT id, queue, touchpoint, visible_at, CASE WHEN receipt IS NULL THEN 0 ELSE 1 END, "
    "deliveries, enqueued_at FROM queue_messages ORDER BY id",
    "SELECT id, sink, touchpoint, event, state, attempts, next_attempt_at, created_at FROM "
    "deliveries ORDER BY id",
    "SELECT id, event_id, buyer, type, at, touchpoint_id, credited, attributes, received_at FROM "
    "events ORDER BY id",
};

inline std::vector<std::string> SqliteRows(const std::string& path, const char* query) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, query, -1, &q, nullptr), SQLITE_OK) << query;
  std::vector<std::string> rows;
  while (sqlite3_step(q) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(q); ++c) {
      const auto* text = sqlite3_column_text(q, c);
      row += text == nullptr ? "NULL" : reinterpret_cast<const char*>(text);
      row += '|';
    }
    rows.push_back(row);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows;
}

inline std::vector<std::string> PgRows(const std::string& url, const char* query) {
  auto conn = pg::Connection::Open(url, "conformance-test");
  pg::Result r = conn->Exec(query);
  std::vector<std::string> rows;
  for (int i = 0; i < r.rows(); ++i) {
    std::string row;
    for (int c = 0; c < r.cols(); ++c) {
      row += r.IsNull(i, c) ? "NULL" : std::string(r.Text(i, c));
      row += '|';
    }
    rows.push_back(row);
  }
  return rows;
}

// A count of the days under way (here, one whose answer the test holds
// up on the reader's thread that made it) holds up neither /metrics'
// counts nor a lease's events: the days have a thread of their own.
inline void ExpectTheDaysHoldUpNoOtherRead(StoreReads& reader, Instant at) {
  // Shared with the callbacks, which may outlive a failed check.
  auto release = std::make_shared<std::promise<void>>();
  auto held = std::make_shared<std::promise<bool>>();
  std::future<bool> holding = held->get_future();
  struct Release {
    std::shared_ptr<std::promise<void>> release;
    ~Release() { release->set_value(); }
  } released_at_the_end{release};
  reader.PendingByDay({at, at + std::chrono::hours(24)},
                      [held, released = release->get_future().share()](StatusOr<PendingDays> d) {
                        held->set_value(d.ok());
                        released.wait();
                      });
  ASSERT_EQ(holding.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(holding.get());

  auto counted = std::make_shared<std::promise<StatusOr<StoreGauges>>>();
  auto gauges = counted->get_future();
  reader.Count({"wecom"}, {"events"},
               [counted](StatusOr<StoreGauges> g) { counted->set_value(std::move(g)); });
  auto filled = std::make_shared<std::promise<bool>>();
  auto events = filled->get_future();
  reader.Fill({}, "wecom",
              [filled](StatusOr<std::vector<LeasedRow>> rows) { filled->set_value(rows.ok()); });
  ASSERT_EQ(gauges.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the counts waited for the days";
  EXPECT_TRUE(gauges.get().ok());
  ASSERT_EQ(events.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the events waited for the days";
  EXPECT_TRUE(events.get());
}

// The daemon's readers (StoreReader on the file, PgReader on the database)
// give the same counts and outcomes reports, and a count of the days holds
// up no other read on either.
inline void ExpectTheReadersAgree(const std::string& path, const std::string& url,
                                  const Rules& rules, Instant at) {
  auto sqlite = StoreReader::Open(path);
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().message();
  auto pg = PgReader::Open(url);
  ASSERT_TRUE(pg.ok()) << pg.status().message();
  std::vector<StoreReads*> readers = {sqlite->get(), pg->get()};
  std::vector<std::string> texts;
  for (StoreReads* reader : readers) {
    ExpectTheDaysHoldUpNoOtherRead(*reader, at);
    std::string text;
    auto gauges = Await<StoreGauges>([&](auto done) {
      reader->Count({"wecom", "advisor", "email"}, {"events"}, std::move(done));
    });
    ASSERT_TRUE(gauges.ok()) << gauges.status().message();
    text += "pending " + std::to_string(gauges->pending);
    for (const auto& list : {gauges->queue_messages, gauges->dead_letters, gauges->outbox}) {
      for (const auto& [name, n] : list) text += " " + name + "=" + std::to_string(n);
    }
    // With the sink removed from the config, its dead letters still count,
    // while there are any.
    auto removed = Await<StoreGauges>([&](auto done) { reader->Count({}, {}, std::move(done)); });
    ASSERT_TRUE(removed.ok()) << removed.status().message();
    auto still = gauges->dead_letters;
    std::erase_if(still, [](const auto& entry) { return entry.second == 0; });
    EXPECT_EQ(removed->dead_letters, still);
    std::vector<Instant> boundaries;
    for (int d = 0; d <= 40; d += 10) boundaries.push_back(at + std::chrono::hours(24 * (d - 10)));
    auto days =
        Await<PendingDays>([&](auto done) { reader->PendingByDay(boundaries, std::move(done)); });
    ASSERT_TRUE(days.ok()) << days.status().message();
    text += " | before " + std::to_string(days->before) + " later " + std::to_string(days->later);
    for (const auto& day : days->days) {
      for (const auto& [cadence, n] : day)
        text += " " + std::to_string(cadence) + ":" + std::to_string(n);
      text += ";";
    }
    for (ReportBy by :
         {ReportBy::kTier, ReportBy::kProduct, ReportBy::kCadence, ReportBy::kTopic}) {
      OutcomeQuery query;
      query.options.from = at - std::chrono::hours(24 * 500);
      query.options.to = at + std::chrono::hours(24 * 500);
      query.options.as_of = at + std::chrono::hours(24 * 500);
      query.options.by = by;
      for (const EngagementType& t : rules.engagement_types) {
        if (t.trust) query.trust_types.push_back(t.name);
      }
      query.runout = [&rules](Instant when, std::int64_t quantity, const std::string& product,
                              const Zone* zone) {
        const int p = rules.ProductIndex(product);
        return p < 0 ? when
                     : Runout(when, quantity, rules.products[static_cast<std::size_t>(p)], zone);
      };
      auto report =
          Await<OutcomeReport>([&](auto done) { reader->Outcomes(query, std::move(done)); });
      ASSERT_TRUE(report.ok()) << report.status().message();
      text += " | " + ReportJson(*report).dump();
    }
    texts.push_back(text);
  }
  EXPECT_THAT(texts[0], HasSubstr("\"purchases\""));
  EXPECT_EQ(texts[1], texts[0]);
}

// A reload to `changed` at `now` and its whole re-plan, in steps: what
// the steps did, together.
template <typename Store>
ReplanCounts ReloadAndReplan(Store& store, RulesInForce& rules,
                             const std::shared_ptr<const Rules>& changed, Instant now) {
  rules.Swap(changed);
  EXPECT_TRUE(store.SetPlanning(PlanningFingerprint(*changed), true).ok());
  ReplanCounts counts;
  for (int i = 0; i < 100; ++i) {
    auto step = store.ReplanSome(ReplanPurchase, PlanningFingerprint(*changed),
                                 std::chrono::steady_clock::now(), now);
    EXPECT_TRUE(step.ok()) << step.status().message();
    if (!step.ok()) break;
    counts.Add(step->counts);
    if (step->done) break;
  }
  return counts;
}

// `run(store, rules)` on a fresh SQLite file and on a fresh PostgreSQL
// database, each store with rules in force of its own: the two logs it
// returns (empty for a store that did not open).
template <typename Run>
std::pair<std::vector<std::string>, std::vector<std::string>> OnBothStores(
    const std::shared_ptr<const Rules>& rules, Run run) {
  std::pair<std::vector<std::string>, std::vector<std::string>> logs;
  TempDir dir;
  RulesInForce sqlite_rules(rules), pg_rules(rules);
  {
    auto store = SqliteStore::Open(dir.path() + "/tp.db", sqlite_rules);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (store.ok()) logs.first = run(**store, sqlite_rules);
  }
  auto db = PgServer::Shared().NewDatabase();
  auto store = PgStore::Open(db->url(), pg_rules);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (store.ok()) logs.second = run(**store, pg_rules);
  return logs;
}

}  // namespace tp::conformance
