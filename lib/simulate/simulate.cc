#include "simulate/simulate.h"

#include <date/tz.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <unordered_map>

#include "core/clock.h"
#include "core/json.h"
#include "outcomes/report_json.h"
#include "planner/purchase_check.h"
#include "scheduler/memory_store.h"
#include "scheduler/scheduler.h"
#include "simulate/csv.h"
#include "simulate/csv_pass.h"
#include "simulate/digest.h"
#include "simulate/report_collector.h"

namespace tp {
namespace {

void AppendLine(std::string& buf, const TouchpointView& t) {
  const std::pair<const char*, std::string_view> names[] = {
      {"{\"id\":", t.id},           {",\"buyer_id\":", t.buyer_id}, {",\"order_id\":", t.order_id},
      {",\"cadence\":", t.cadence}, {",\"topic\":", t.topic},       {",\"tier\":", t.tier},
      {",\"product\":", t.product}};
  for (const auto& [key, value] : names) {
    buf += key;
    AppendJsonString(buf, value);
  }
  buf += ",\"due_at\":\"";
  AppendRfc3339(buf, t.due_at, t.zone);
  buf += "\",\"fire_at\":";
  if (t.fire_at) {
    buf.push_back('"');
    AppendRfc3339(buf, *t.fire_at, t.zone);
    buf.push_back('"');
  } else {
    buf += "null";
  }
  buf += ",\"status\":\"";
  buf += StateName(t.state);
  buf += "\"}\n";
}

// Buffers output lines; fired ones go to `out`, the rest to a temporary
// spool file appended at the end, so memory stays flat however long the run.
class LineWriter final : public MemoryStore::Observer {
 public:
  // With `report`, no line is written (the report is printed instead).
  LineWriter(std::ostream& out, bool report)
      : out_(out), spool_(report ? nullptr : std::tmpfile()), report_(report) {}
  ~LineWriter() override {
    if (spool_ != nullptr) std::fclose(spool_);
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  bool ok() const { return spool_ok_ && out_.good(); }

  void OnFinal(const TouchpointView& t) override {
    if (report_) return;
    ++lines_;
    if (t.state == TouchpointState::kFired) {
      AppendLine(fired_, t);
      if (fired_.size() > kFlushAt) FlushFired();
    } else {
      AppendLine(rest_, t);
      if (rest_.size() > kFlushAt && spool_ != nullptr) FlushRest();
    }
  }
  void Pending(const TouchpointView& t) {
    if (report_) return;
    ++lines_;
    AppendLine(fired_, t);
    if (fired_.size() > kFlushAt) FlushFired();
  }
  // Writes the fired lines, then the spool. Without a spool file (no
  // writable temporary directory) the rest were kept in memory instead.
  void FinishFinals() {
    FlushFired();
    if (spool_ == nullptr) {
      out_.write(rest_.data(), static_cast<std::streamsize>(rest_.size()));
      rest_.clear();
      return;
    }
    FlushRest();
    std::rewind(spool_);
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, spool_)) > 0) {
      out_.write(buf, static_cast<std::streamsize>(n));
    }
    spool_ok_ = spool_ok_ && !std::ferror(spool_);
  }
  void Flush() {
    FlushFired();
    out_.flush();
  }
  std::uint64_t lines() const { return lines_; }

 private:
  static constexpr std::size_t kFlushAt = 1 << 16;
  void FlushFired() {
    out_.write(fired_.data(), static_cast<std::streamsize>(fired_.size()));
    fired_.clear();
  }
  void FlushRest() {
    spool_ok_ = spool_ok_ && std::fwrite(rest_.data(), 1, rest_.size(), spool_) == rest_.size();
    rest_.clear();
  }

  std::ostream& out_;
  std::FILE* spool_;
  bool spool_ok_ = true;
  std::string fired_;
  std::string rest_;
  std::uint64_t lines_ = 0;
  bool report_;
};

// Hands what becomes of each touchpoint to a digest.
class DigestFeed final : public MemoryStore::Observer {
 public:
  DigestFeed(SimDigest& digest, const std::function<void(const TouchpointView&)>& also)
      : digest_(digest), also_(also) {}
  void OnFinal(const TouchpointView& t) override {
    digest_.OnTouchpoint(t);
    if (also_) also_(t);
  }
  void OnCapDeferred(const TouchpointView& t, Instant until, std::string_view reason) override {
    digest_.OnCapDeferred(t, until, reason);
  }

 private:
  SimDigest& digest_;
  const std::function<void(const TouchpointView&)>& also_;
};

std::string ErrorAt(const std::string& file, std::uint64_t line, const std::string& message) {
  return file + ":" + std::to_string(line) + ": error: " + message;
}

}  // namespace

SimulateResult Simulate(const std::shared_ptr<const Rules>& rules, const SimulateOptions& options,
                        std::ostream& out) {
  SimulateResult result;
  auto failing = [&](const std::string& path) {
    return [&result, &options, path](std::uint64_t line, const std::string& message) {
      if (result.errors.size() < options.max_errors) {
        result.errors.push_back(ErrorAt(path, line, message));
      }
    };
  };

  // Pass 1: validate every row of both files; remember where each is and
  // when it happened.
  CsvPass<Purchase, PurchaseRowParser> purchases(
      options.purchases_path,
      {[&](const std::vector<std::string>& header) {
         return PurchaseRowParser::FromHeader(header, *rules);
       },
       [](const Purchase& p) { return p.purchased_at; },
       [](const Purchase& p) -> const std::string& { return p.order_id; },
       // The zone, not its spelling: "" and the default named are the same.
       [&](Purchase& p) {
         if (p.timezone.empty()) p.timezone = rules->timezone->name();
         if (const Zone* zone = FindZone(p.timezone)) p.timezone = zone->name();
       },
       "order_id"},
      failing(options.purchases_path));
  std::optional<CsvPass<EngagementEvent, EventRowParser>> events;
  if (options.events_path) {
    events.emplace(*options.events_path,
                   CsvKind<EngagementEvent, EventRowParser>{
                       [&](const std::vector<std::string>& header) {
                         return EventRowParser::FromHeader(header, *rules);
                       },
                       [](const EngagementEvent& e) { return e.at; },
                       [](const EngagementEvent& e) -> const std::string& { return e.event_id; },
                       [](EngagementEvent&) {}, "event_id"},
                   failing(*options.events_path));
  }
  for (auto fatal : {purchases.Index(), events ? events->Index() : std::nullopt}) {
    if (fatal) {
      result.errors.push_back(*fatal);
      return result;
    }
  }
  for (const auto& [path, bad] :
       {std::pair{options.purchases_path, purchases.bad_rows()},
        std::pair{options.events_path.value_or(""), events ? events->bad_rows() : 0}}) {
    if (bad > 0 && bad > result.errors.size()) {
      result.errors.push_back(path + ": error: " + std::to_string(bad) +
                              " bad rows in all; nothing was simulated");
    }
  }
  if (!result.errors.empty()) return result;

  // Pass 2: replay both on the virtual clock, in time order; at one instant
  // the purchase first (an answer at the very moment of a purchase counts
  // for it).
  SimDigest* const digest = options.digest;
  LineWriter writer(out, options.report.has_value() || digest != nullptr);
  std::optional<DigestFeed> feed;
  if (digest != nullptr) feed.emplace(*digest, options.on_touchpoint);
  MemoryStore store(rules, feed ? static_cast<MemoryStore::Observer*>(&*feed) : &writer);
  // Events are credited to the touchpoints it tracks, and the report reads
  // their fires there.
  if (events || options.report) store.TrackTouchpoints();
  std::optional<ReportCollector> collector;
  if (options.report) {
    collector.emplace(*rules, std::initializer_list<ReportBy>{*options.report}, store);
  } else if (digest != nullptr && events) {
    collector.emplace(*rules, std::initializer_list<ReportBy>{ReportBy::kTier, ReportBy::kTopic},
                      store);
  }
  FakeClock clock(Instant{});
  const RulesInForce in_force(rules);  // no reload here: these rules throughout
  Scheduler scheduler(store, clock, in_force);
  const Instant end = options.until.value_or(Instant::max());
  auto run_until = [&](Instant limit) -> bool {
    for (;;) {
      auto next = scheduler.NextWakeup();
      if (!next.ok() || !*next || **next > limit) return next.ok();
      clock.Set(**next);
      if (!scheduler.RunDue().ok()) return false;
    }
  };
  const std::vector<CsvRow>& bought = purchases.rows();
  static const std::vector<CsvRow> kNone;
  const std::vector<CsvRow>& heard = events ? events->rows() : kNone;
  Purchase purchase;
  EngagementEvent event;
  for (std::size_t p = 0, e = 0; p < bought.size() || e < heard.size();) {
    const bool purchase_next =
        e == heard.size() || (p < bought.size() && bought[p].at_ms <= heard[e].at_ms);
    const CsvRow& r = purchase_next ? bought[p++] : heard[e++];
    const Instant at{Millis(r.at_ms)};
    if (at > end) break;
    if (!run_until(at)) {
      result.errors.push_back("error: the scheduler failed");
      return result;
    }
    if (clock.Now() < at) clock.Set(at);
    if (purchase_next) {
      purchases.Load(r, purchase);
      // Whether this is the buyer's first purchase (an event may have
      // made the buyer known before it).
      bool first_purchase = false;
      if (digest != nullptr) {
        first_purchase = !store.BuyerIndexOf(purchase.buyer_id);
        if (!first_purchase) {
          auto known = store.LoadBuyer(purchase.buyer_id);
          first_purchase = known.ok() && known->history.empty();
        }
      }
      auto outcome = scheduler.Ingest(purchase);
      if (!outcome.ok()) {
        result.errors.push_back(ErrorAt(purchases.path(), r.line, outcome.status().message()));
        return result;
      }
      if (outcome->kind == IngestOutcome::Kind::kDuplicate) {
        ++result.duplicates;
        continue;
      }
      ++result.purchases;
      if (digest != nullptr) {
        digest->OnPurchase(purchase, outcome->tier, first_purchase);
      }
      if (collector) {
        collector->OnPurchase(purchase, outcome->tier, scheduler.ZoneFor(purchase.timezone));
      }
      continue;
    }
    events->Load(r, event);
    auto outcome = scheduler.RecordEvent(event);
    if (!outcome.ok()) {
      result.errors.push_back(ErrorAt(events->path(), r.line, outcome.status().message()));
      return result;
    }
    if (outcome->kind == EventOutcome::Kind::kUnknownTouchpoint) {
      // Refused, as the daemon would refuse it; the run goes on.
      result.warnings.push_back(events->path() + ":" + std::to_string(r.line) +
                                ": warning: field 'touchpoint_id': '" + event.touchpoint_id +
                                "' names no touchpoint of buyer '" + event.buyer_id +
                                "'; the event is left out, as the daemon would refuse it");
      continue;
    }
    if (outcome->kind == EventOutcome::Kind::kDuplicate) {
      ++result.event_duplicates;
      continue;
    }
    ++result.events;
    if (collector) collector->OnEvent(event, outcome->credited);
  }
  if (!run_until(end)) {
    result.errors.push_back("error: the scheduler failed");
    return result;
  }
  ReportOptions report_options;
  report_options.from = kMinPurchasedAt;  // every purchase: the API's bounds
  report_options.to = kMaxPurchasedAt;
  report_options.as_of = options.until.value_or(clock.Now());
  report_options.windows = rules->outcomes;
  if (options.report) {
    report_options.by = *options.report;
    result.report = collector->Report(report_options);
    return result;
  }
  if (digest != nullptr) {
    store.ForEachPending([&](const TouchpointView& t) { feed->OnFinal(t); });
    digest->SetTotals(
        {result.purchases, result.duplicates, result.events, result.event_duplicates});
    if (collector) {
      nlohmann::ordered_json outcomes;
      report_options.by = ReportBy::kTier;
      outcomes["by_tier"] = ReportJson(collector->Report(report_options));
      outcomes["by_step"] = ReportJson(collector->ReportBySteps(report_options));
      digest->SetOutcomes(outcomes.dump());
    }
    return result;
  }
  writer.FinishFinals();
  store.ForEachPending([&](const TouchpointView& t) { writer.Pending(t); });
  writer.Flush();
  if (!writer.ok()) result.errors.push_back("error: writing the output failed");
  result.lines = writer.lines();
  return result;
}

}  // namespace tp
