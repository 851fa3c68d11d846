#include "daemon/ingest_writer.h"

#include <spdlog/spdlog.h>

#include <type_traits>

#include "api/http_json.h"
#include "core/json.h"

namespace tp {

using api::Json;

IngestWriter::IngestWriter(Transactions& store, ScheduleStore& schedule, const Clock& clock,
                           const RulesInForce& rules)
    : store_(store), rules_(rules), scheduler_(schedule, clock, rules) {
  scheduler_.set_observer(&log_);
}

HttpResponse IngestWriter::Failed(const Status& failed, const std::string& what,
                                  WrittenGroup& written) {
  written.unavailable = written.unavailable || failed.unavailable();
  return api::StoreFailed(failed, what);
}

WrittenGroup IngestWriter::Write(const std::vector<const IngestItems*>& group) {
  WrittenGroup written;
  written.responses.resize(group.size());
  log_.DropFrom(0);
  const auto all = [&written](const HttpResponse& answer) {
    for (HttpResponse& r : written.responses) r = answer;
  };
  // Every buyer the group writes, held for the whole group (PostgreSQL:
  // another writer's group sharing buyers waits, or is waited for, where
  // taking them request by request could deadlock).
  std::vector<std::string> buyers;
  for (const IngestItems* items : group) {
    std::visit(
        [&buyers](const auto& request) {
          if constexpr (std::is_same_v<std::decay_t<decltype(request)>, OptChange>) {
            buyers.push_back(request.buyer_id);
          } else {
            for (const auto& item : request) buyers.push_back(item.buyer_id);
          }
        },
        *items);
  }
  Status begun = store_.Begin();
  if (begun.ok()) {
    begun = store_.TakeBuyersTurns(buyers);
    if (!begun.ok()) (void)store_.Rollback();
  }
  if (!begun.ok()) {
    spdlog::error("ingest: {}", begun.message());
    written.unavailable = begun.unavailable();
    all(api::Unavailable("cannot write to the database: " + begun.message()));
    return written;
  }
  IngestCounts counts;
  for (std::size_t r = 0; r < group.size(); ++r) {
    HttpResponse answer = RecordOne(*group[r], counts, written);
    if (answer.status < 500) {
      written.responses[r] = std::move(answer);
      continue;
    }
    // A failed write may have ended the whole transaction (SQLite rolls
    // back by itself on a full disk or an I/O error): the requests before
    // are not recorded either, and those after must not start afresh.
    (void)store_.Rollback();
    log_.DropFrom(0);
    all(api::Unavailable("not recorded: another request written with it failed"));
    written.responses[r] = std::move(answer);
    return written;
  }
  if (Status s = store_.Commit(); !s.ok()) {
    spdlog::error("ingest commit: {}", s.message());
    (void)store_.Rollback();
    log_.DropFrom(0);
    written.unavailable = written.unavailable || s.unavailable();
    all(api::Unavailable("cannot commit to the database: " + s.message()));
    return written;
  }
  written.committed = true;
  written.counts = std::move(counts);
  written.observed = log_.Take();
  return written;
}

HttpResponse IngestWriter::RecordOne(const IngestItems& items, IngestCounts& counts,
                                     WrittenGroup& written) {
  const char* what = "cannot record purchases";
  if (std::holds_alternative<std::vector<EngagementEvent>>(items)) what = "cannot record events";
  if (const auto* change = std::get_if<OptChange>(&items)) {
    what = change->opt_out ? "cannot opt out" : "cannot opt in";
  }
  if (Status s = store_.Savepoint(); !s.ok()) return Failed(s, what, written);
  const std::size_t mark = log_.size();
  IngestCounts mine;
  bool rolled_back = false;
  HttpResponse answer = std::visit(
      [&](const auto& list) {
        using T = std::decay_t<decltype(list)>;
        if constexpr (std::is_same_v<T, std::vector<Purchase>>) {
          return RecordPurchases(list, mine, rolled_back, written);
        } else if constexpr (std::is_same_v<T, std::vector<EngagementEvent>>) {
          return RecordEvents(list, mine, rolled_back, written);
        } else {
          return RecordOptChange(list, rolled_back, written);
        }
      },
      items);
  if (rolled_back) {
    (void)store_.RollbackTo();
    log_.DropFrom(mark);
    counts.conflicts += mine.conflicts;
    for (const auto& [key, n] : mine.events) {
      if (key.second != "accepted" && key.second != "duplicate") counts.events[key] += n;
    }
    return answer;
  }
  if (Status s = store_.Release(); !s.ok()) {
    log_.DropFrom(mark);
    return Failed(s, what, written);
  }
  counts.accepted += mine.accepted;
  counts.duplicates += mine.duplicates;
  for (const auto& [key, n] : mine.events) counts.events[key] += n;
  return answer;
}

HttpResponse IngestWriter::RecordPurchases(const std::vector<Purchase>& items, IngestCounts& counts,
                                           bool& rolled_back, WrittenGroup& written) {
  Json results = Json::array();
  int planned = 0, skipped = 0, cancelled = 0;
  if (Status s = scheduler_.PrepareIngest(items); !s.ok()) {
    rolled_back = true;
    spdlog::error("ingest: {}", s.message());
    return Failed(s, "cannot record purchases", written);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto outcome = scheduler_.Ingest(items[i]);
    if (!outcome.ok() || outcome->kind == IngestOutcome::Kind::kConflict) {
      rolled_back = true;
      if (!outcome.ok()) {
        spdlog::error("ingest: {}", outcome.status().message());
        return Failed(outcome.status(), "cannot record purchase", written);
      }
      ++counts.conflicts;
      const std::string& field = outcome->conflict_field;
      return api::JsonResponse(
          409, {{"error", "order_id '" + items[i].order_id + "' was already recorded with " +
                              (field.empty() ? "different content" : "another " + field)},
                {"index", i},
                {"field", field.empty() ? "order_id" : field},
                {"order_id", items[i].order_id}});
    }
    Json result = {{"order_id", items[i].order_id}};
    if (outcome->kind == IngestOutcome::Kind::kDuplicate) {
      ++counts.duplicates;
      result["status"] = "duplicate";
    } else {
      ++counts.accepted;
      planned += outcome->planned;
      skipped += outcome->skipped;
      cancelled += outcome->cancelled;
      result["status"] = "accepted";
      result["tier"] = rules_->tiers[outcome->tier].name;
      result["touchpoints"] = outcome->planned;
      result["skipped"] = outcome->skipped;
      result["cancelled"] = outcome->cancelled;
    }
    results.push_back(std::move(result));
  }
  return api::JsonResponse(200, {{"accepted", counts.accepted},
                                 {"duplicates", counts.duplicates},
                                 {"touchpoints_planned", planned},
                                 {"touchpoints_skipped", skipped},
                                 {"touchpoints_cancelled", cancelled},
                                 {"results", std::move(results)}});
}

HttpResponse IngestWriter::RecordEvents(const std::vector<EngagementEvent>& items,
                                        IngestCounts& counts, bool& rolled_back,
                                        WrittenGroup& written) {
  // The answer is written as text: at 10,000 events a request (the limit
  // then), a JSON tree of the results cost more than recording them.
  std::string results;
  results.reserve(items.size() * 64);
  std::int64_t accepted = 0, duplicates = 0;
  int cancelled = 0;
  // Per type: accepted, duplicates (a few types, many events).
  std::map<std::string_view, std::pair<std::int64_t, std::int64_t>> by_type;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const EngagementEvent& e = items[i];
    auto outcome = scheduler_.RecordEvent(e);
    if (!outcome.ok()) {
      rolled_back = true;
      spdlog::error("events: {}", outcome.status().message());
      return Failed(outcome.status(), "cannot record event", written);
    }
    switch (outcome->kind) {
      case EventOutcome::Kind::kConflict: {
        rolled_back = true;
        ++counts.events[{e.type, "conflict"}];
        const std::string& field = outcome->conflict_field;
        return api::JsonResponse(
            409, {{"error", "event_id '" + e.event_id + "' was already recorded with " +
                                (field.empty() ? "different content" : "another " + field)},
                  {"index", i},
                  {"field", field.empty() ? "event_id" : field},
                  {"event_id", e.event_id}});
      }
      case EventOutcome::Kind::kUnknownTouchpoint:
        rolled_back = true;
        ++counts.events[{e.type, "invalid"}];
        return api::JsonResponse(
            400, {{"error", "touchpoint_id '" + e.touchpoint_id +
                                "' names no touchpoint of buyer '" + e.buyer_id + "'"},
                  {"index", i},
                  {"field", "touchpoint_id"}});
      case EventOutcome::Kind::kDuplicate:
      case EventOutcome::Kind::kRecorded: {
        const bool duplicate = outcome->kind == EventOutcome::Kind::kDuplicate;
        ++(duplicate ? duplicates : accepted);
        auto& [type_accepted, type_duplicates] = by_type[e.type];
        ++(duplicate ? type_duplicates : type_accepted);
        results += results.empty() ? "{\"event_id\":" : ",{\"event_id\":";
        AppendJsonString(results, e.event_id);
        if (duplicate) {
          results += ",\"status\":\"duplicate\"}";
        } else {
          cancelled += outcome->cancelled;
          results += ",\"status\":\"accepted\",\"cancelled\":";
          results += std::to_string(outcome->cancelled);
          results += '}';
        }
        break;
      }
    }
  }
  for (const auto& [type, n] : by_type) {
    if (n.first > 0) counts.events[{std::string(type), "accepted"}] += n.first;
    if (n.second > 0) counts.events[{std::string(type), "duplicate"}] += n.second;
  }
  return HttpResponse{200, "{\"accepted\":" + std::to_string(accepted) +
                               ",\"duplicates\":" + std::to_string(duplicates) +
                               ",\"touchpoints_cancelled\":" + std::to_string(cancelled) +
                               ",\"results\":[" + results + "]}"};
}

HttpResponse IngestWriter::RecordOptChange(const OptChange& change, bool& rolled_back,
                                           WrittenGroup& written) {
  Json body = {{"buyer_id", change.buyer_id}, {"opted_out", change.opt_out}};
  if (change.opt_out) {
    auto suppressed = scheduler_.OptOut(change.buyer_id);
    if (!suppressed.ok()) {
      rolled_back = true;
      return Failed(suppressed.status(), "cannot opt out", written);
    }
    body["suppressed"] = *suppressed;
  } else if (Status s = scheduler_.OptIn(change.buyer_id); !s.ok()) {
    rolled_back = true;
    return Failed(s, "cannot opt in", written);
  }
  return api::JsonResponse(200, body);
}

}  // namespace tp
