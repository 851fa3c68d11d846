// The store's conformance suite: one scenario through the scheduler on each
// backend (MemoryStore, simulate's; SqliteStore; PgStore on a real
// PostgreSQL) must decide every touchpoint alike, and the two databases
// must end up holding the same rows, event texts included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <random>

#include "core/ids.h"
#include "harness.h"
#include "outcomes/report_json.h"
#include "pg_server.h"
#include "planner/planner.h"
#include "planner/replan.h"
#include "scheduler/memory_store.h"
#include "scheduler/scheduler.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"
#include "store/sqlite_store.h"
#include "store/store_reader.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::At;
using ::testing::HasSubstr;
using testing::PgServer;
using testing::TempDir;

// The playbook (tiers, caps scoped to sinks, steps with sinks of their
// own, `when`, stop_on), with a Redis sink on the reorder cadence so fires
// write outbox entries too.
std::shared_ptr<const Rules> ScenarioRules() {
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

std::vector<Item> Scenario(const Rules& rules, int buyers) {
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
class Recorder final : public ScheduleStore {
 public:
  explicit Recorder(ScheduleStore& inner) : inner_(inner) {}
  std::vector<std::string> log;

  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& p, const Zone* z) override {
    return inner_.MatchPurchase(p, z);
  }
  StatusOr<BuyerState> LoadBuyer(std::string_view b) override { return inner_.LoadBuyer(b); }
  Status AddPurchase(const Purchase& p, const Zone* z, int tier,
                     std::span<const PlannedTouchpoint> t, Instant now) override {
    return inner_.AddPurchase(p, z, tier, t, now);
  }
  StatusOr<CadenceCounts> CancelEarlier(std::string_view b, Instant up_to, std::string_view o,
                                        Instant now, std::string_view r) override {
    return inner_.CancelEarlier(b, up_to, o, now, r);
  }
  StatusOr<CadenceCounts> SetOptedOut(std::string_view b, bool o, Instant now) override {
    return inner_.SetOptedOut(b, o, now);
  }
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& e) override {
    return inner_.MatchEvent(e);
  }
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view b, std::string_view t) override {
    return inner_.FindTouchpoint(b, t);
  }
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view b, Instant at) override {
    return inner_.LastFiredBefore(b, at);
  }
  StatusOr<bool> AddEvent(const EngagementEvent& e, std::uint64_t b, std::uint64_t c,
                          Instant now) override {
    return inner_.AddEvent(e, b, c, now);
  }
  StatusOr<CadenceCounts> CancelCadences(std::string_view b, std::span<const std::string> c,
                                         Instant up_to, Instant now, std::string_view r) override {
    return inner_.CancelCadences(b, c, up_to, now, r);
  }
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& d,
                                                           std::span<const std::string> t,
                                                           Instant until) override {
    return inner_.FirstEngagement(d, t, until);
  }
  StatusOr<std::optional<Instant>> NextWakeup() override { return inner_.NextWakeup(); }
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override {
    return inner_.TakeDue(now, max);
  }
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& d, Instant from,
                                                      Instant to, bool sinks) override {
    return inner_.FiredBetween(d, from, to, sinks);
  }
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
    return inner_.ApplyOutcomes(due, outcomes);
  }

 private:
  ScheduleStore& inner_;
};

// Runs the scenario on `store` (with `txn`, each item in a group as the
// daemon's batcher writes it): the scheduler's decisions, and what each
// item came to.
// The scenario runs on to `end` (by default, until nothing is pending).
std::vector<std::string> RunScenario(ScheduleStore& store, Transactions* txn,
                                     const RulesInForce& rules, const std::vector<Item>& items,
                                     std::optional<Instant> end = std::nullopt) {
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
  for (const Item& item : items) {
    run_until(item.at);
    clock.Set(std::max(clock.Now(), item.at));
    if (txn != nullptr) {
      EXPECT_TRUE(txn->Begin().ok());
      EXPECT_TRUE(txn->Savepoint().ok());
    }
    std::string line;
    switch (item.kind) {
      case Item::Kind::kPurchase: {
        auto out = scheduler.Ingest(item.purchase);
        EXPECT_TRUE(out.ok()) << out.status().message();
        if (out.ok()) {
          line = item.purchase.order_id + ": " + std::to_string(static_cast<int>(out->kind)) +
                 " tier " + std::to_string(out->tier) + " planned " + std::to_string(out->planned) +
                 " skipped " + std::to_string(out->skipped) + " cancelled " +
                 std::to_string(out->cancelled);
        }
        break;
      }
      case Item::Kind::kEvent: {
        auto out = scheduler.RecordEvent(item.event);
        EXPECT_TRUE(out.ok()) << out.status().message();
        if (out.ok()) {
          line = item.event.event_id + ": " + std::to_string(static_cast<int>(out->kind)) +
                 " cancelled " + std::to_string(out->cancelled) + " credited " +
                 (out->credited != 0 ? "yes" : "no");
        }
        break;
      }
      case Item::Kind::kOptOut:
        EXPECT_TRUE(scheduler.OptOut(item.purchase.buyer_id).ok());
        line = item.purchase.buyer_id + ": opted out";
        break;
    }
    if (txn != nullptr) {
      EXPECT_TRUE(txn->Release().ok());
      EXPECT_TRUE(txn->Commit().ok());
    }
    log.push_back(line);
  }
  run_until(end.value_or(items.back().at + std::chrono::hours(24 * 400)));
  log.insert(log.end(), recorder.log.begin(), recorder.log.end());
  return log;
}

// A table's rows as text, in id order; booleans as 0/1 and amounts in
// thousandths on both sides.
const char* const kTables[] = {
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

std::vector<std::string> SqliteRows(const std::string& path, const char* query) {
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

std::vector<std::string> PgRows(const std::string& url, const char* query) {
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

// What a reader's job gives, waited for.
template <typename T, typename Start>
StatusOr<T> Await(Start start) {
  std::promise<StatusOr<T>> done;
  start([&done](StatusOr<T> result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

// The daemon's readers (StoreReader on the file, PgReader on the database)
// give the same counts and outcomes reports.
void ExpectTheReadersAgree(const std::string& path, const std::string& url, const Rules& rules,
                           Instant at) {
  auto sqlite = StoreReader::Open(path);
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().message();
  auto pg = PgReader::Open(url);
  ASSERT_TRUE(pg.ok()) << pg.status().message();
  std::vector<StoreReads*> readers = {sqlite->get(), pg->get()};
  std::vector<std::string> texts;
  for (StoreReads* reader : readers) {
    std::string text;
    auto gauges = Await<StoreGauges>([&](auto done) {
      reader->Count({"wecom", "advisor", "email"}, {"events"}, std::move(done));
    });
    ASSERT_TRUE(gauges.ok()) << gauges.status().message();
    text += "pending " + std::to_string(gauges->pending);
    for (const auto& list : {gauges->queue_messages, gauges->dead_letters, gauges->outbox}) {
      for (const auto& [name, n] : list) text += " " + name + "=" + std::to_string(n);
    }
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

TEST(StoreConformanceTest, EveryBackendDecidesAlikeAndTheDatabasesHoldTheSameRows) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  RulesInForce in_force(rules);
  const std::vector<Item> items = Scenario(*rules, 80);

  MemoryStore memory(rules);
  memory.TrackTouchpoints();  // as simulate does with events
  const std::vector<std::string> want = RunScenario(memory, nullptr, in_force, items);

  TempDir dir;
  const std::string path = dir.path() + "/tp.db";
  std::vector<std::string> sqlite_log;
  {
    auto store = SqliteStore::Open(path, in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    sqlite_log = RunScenario(**store, store->get(), in_force, items);
  }
  auto db = PgServer::Shared().NewDatabase();
  std::vector<std::string> pg_log;
  {
    auto store = PgStore::Open(db->url(), in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    pg_log = RunScenario(**store, store->get(), in_force, items);
  }

  // The scenario is worth comparing: every kind of outcome happened.
  auto count = [&](const std::string& needle) {
    return std::count_if(want.begin(), want.end(), [&](const std::string& line) {
      return line.find(needle) != std::string::npos;
    });
  };
  EXPECT_GT(count(": 0 20"), 200) << "fires";
  EXPECT_GT(count("frequency cap reached"), 0);
  EXPECT_GT(count(": 1 20"), 0) << "deferrals";
  EXPECT_GT(count("credited yes"), 0);
  EXPECT_GT(count("opted out"), 0);
  EXPECT_GT(count(": 1 tier -1"), 0) << "duplicates";
  EXPECT_GT(count(": 2 tier -1"), 0) << "conflicts";

  for (std::size_t i = 0; i < std::min(want.size(), sqlite_log.size()); ++i) {
    ASSERT_EQ(sqlite_log[i], want[i]) << "line " << i << " on SQLite";
  }
  ASSERT_EQ(sqlite_log.size(), want.size());
  for (std::size_t i = 0; i < std::min(want.size(), pg_log.size()); ++i) {
    ASSERT_EQ(pg_log[i], want[i]) << "line " << i << " on PostgreSQL";
  }
  ASSERT_EQ(pg_log.size(), want.size());
  ExpectTheReadersAgree(path, db->url(), *rules, items.back().at);
  for (const char* query : kTables) {
    const auto sqlite_rows = SqliteRows(path, query);
    const auto pg_rows = PgRows(db->url(), query);
    EXPECT_FALSE(sqlite_rows.empty()) << query;
    ASSERT_EQ(pg_rows.size(), sqlite_rows.size()) << query;
    for (std::size_t i = 0; i < pg_rows.size(); ++i) {
      ASSERT_EQ(pg_rows[i], sqlite_rows[i]) << query;
    }
  }
}

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
      auto replayed = store.ReplayDeadLetters((*dead)[0].id, "", now);
      if (must(replayed)) log.push_back("replayed " + std::to_string(*replayed));
    }
  }
  auto by_sink = store.OutboxBySink();
  if (must(by_sink)) {
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
  for (int i = 0; i < 1000; ++i) {
    auto step = store.ReplanSome(ReplanPurchase, std::chrono::steady_clock::now(), now);
    if (!must(step)) break;
    log.push_back("replanned " + std::to_string(step->counts.moved) + " " +
                  std::to_string(step->counts.updated) + " " + std::to_string(step->counts.added) +
                  " " + std::to_string(step->counts.cancelled));
    if (step->done) break;
  }
  auto planning = store.Planning();
  if (must(planning)) {
    EXPECT_FALSE(planning->replanning);
  }

  for (int b = 0; b < 80; ++b) {
    const std::string buyer = "buyer-" + std::to_string(b);
    auto report = store.GetBuyer(buyer);
    auto pending_of = store.PendingOf(buyer);
    if (!must(report) || !must(pending_of) || !report->has_value()) continue;
    const BuyerReport& r = **report;
    std::string line = buyer + " " + r.tier + (r.opted_out ? " opted out" : "") + " pending " +
                       std::to_string(*pending_of);
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
  auto changed_yaml = [&] {
    std::string y = yaml;
    const std::string from = "{after: 3d, topic: comfort-check";
    y.replace(y.find(from), from.size(), "{after: 4d, topic: comfort-check");
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
  EXPECT_EQ(count("replayed 1"), 1);
  EXPECT_GT(count("rules changed"), 0) << "the re-plan moved nothing";
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

}  // namespace
}  // namespace tp
