#include "daemon/ingest_batcher.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "api/http_json.h"
#include "core/json.h"

namespace tp {

using api::Json;

IngestBatcher::IngestBatcher(boost::asio::io_context& io, Transactions& store, Scheduler& scheduler,
                             DaemonMetrics& metrics, const RulesInForce& rules, Hooks hooks)
    : io_(io),
      store_(store),
      scheduler_(scheduler),
      metrics_(metrics),
      rules_(rules),
      hooks_(std::move(hooks)) {}

std::optional<HttpResponse> IngestBatcher::Closed() const {
  if (stopping_) return api::ErrorResponse(503, "shutting down");
  return std::nullopt;
}

void IngestBatcher::Submit(std::vector<Purchase> items, HttpRespond respond) {
  if (auto why = hooks_.no_room()) {
    return respond(api::Unavailable("the database has no room for purchases: " + *why));
  }
  Queue(std::move(items), std::move(respond));
}

void IngestBatcher::Submit(std::vector<EngagementEvent> items, HttpRespond respond) {
  if (auto why = hooks_.no_room()) {
    return respond(api::Unavailable("the database has no room for events: " + *why));
  }
  Queue(std::move(items), std::move(respond));
}

void IngestBatcher::Queue(Items items, HttpRespond respond) {
  pending_.push_back({std::move(items), std::move(respond)});
  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(io_, [this] {
      if (flush_posted_) Flush();
    });
  }
}

void IngestBatcher::Flush() {
  flush_posted_ = false;
  if (pending_.empty()) return;
  std::vector<Pending> batch = std::move(pending_);
  pending_.clear();
  std::vector<HttpResponse> responses(batch.size());
  // Every buyer the batch writes, held for the whole batch (PostgreSQL:
  // another daemon's batch sharing buyers waits, or is waited for, where
  // taking them request by request could deadlock).
  std::vector<std::string> buyers;
  for (const Pending& p : batch) {
    std::visit(
        [&buyers](const auto& list) {
          for (const auto& item : list) buyers.push_back(item.buyer_id);
        },
        p.items);
  }
  Status begun = store_.Begin();
  if (begun.ok()) {
    begun = store_.TakeBuyersTurns(buyers);
    if (!begun.ok()) (void)store_.Rollback();
  }
  if (!begun.ok()) {
    spdlog::error("ingest: {}", begun.message());
    if (begun.unavailable()) hooks_.storage_full();
    for (auto& p : batch) {
      p.respond(api::Unavailable("cannot write to the database: " + begun.message()));
    }
    return;
  }
  Counts counts;
  for (std::size_t r = 0; r < batch.size(); ++r) {
    metrics_.StageBegin();
    responses[r] = RecordOne(batch[r].items, counts);
    if (responses[r].status < 500) continue;
    // A failed write may have ended the whole transaction (SQLite rolls
    // back by itself on a full disk or an I/O error): the requests before
    // are not recorded either, and those after must not start afresh.
    (void)store_.Rollback();
    metrics_.StageAbort();
    for (std::size_t k = 0; k < batch.size(); ++k) {
      batch[k].respond(k == r ? std::move(responses[r])
                              : api::Unavailable("not recorded: another request written with it "
                                                 "failed"));
    }
    return;
  }
  if (Status s = store_.Commit(); !s.ok()) {
    spdlog::error("ingest commit: {}", s.message());
    (void)store_.Rollback();
    metrics_.StageAbort();
    if (s.unavailable()) hooks_.storage_full();
    for (auto& p : batch) {
      p.respond(api::Unavailable("cannot commit to the database: " + s.message()));
    }
    return;
  }
  metrics_.StageCommit();
  metrics_.ingest_purchases.Add({"accepted"}, static_cast<double>(counts.accepted));
  metrics_.ingest_purchases.Add({"duplicate"}, static_cast<double>(counts.duplicates));
  metrics_.ingest_purchases.Add({"conflict"}, static_cast<double>(counts.conflicts));
  for (const auto& [key, n] : counts.events) {
    metrics_.events.Add({key.first, key.second}, static_cast<double>(n));
  }
  for (std::size_t r = 0; r < batch.size(); ++r) batch[r].respond(std::move(responses[r]));
  hooks_.committed();
}

HttpResponse IngestBatcher::RecordOne(const Items& items, Counts& counts) {
  const char* what = std::holds_alternative<std::vector<Purchase>>(items)
                         ? "cannot record purchases"
                         : "cannot record events";
  if (Status s = store_.Savepoint(); !s.ok()) return hooks_.store_failed(s, what);
  Counts mine;
  bool rolled_back = false;
  HttpResponse answer = std::visit(
      [&](const auto& list) {
        using T = std::decay_t<decltype(list)>;
        if constexpr (std::is_same_v<T, std::vector<Purchase>>) {
          return RecordPurchases(list, mine, rolled_back);
        } else {
          return RecordEvents(list, mine, rolled_back);
        }
      },
      items);
  if (rolled_back) {
    (void)store_.RollbackTo();
    metrics_.StageRollbackRequest();
    counts.conflicts += mine.conflicts;
    for (const auto& [key, n] : mine.events) {
      if (key.second != "accepted" && key.second != "duplicate") counts.events[key] += n;
    }
    return answer;
  }
  if (Status s = store_.Release(); !s.ok()) {
    metrics_.StageRollbackRequest();
    return hooks_.store_failed(s, what);
  }
  counts.accepted += mine.accepted;
  counts.duplicates += mine.duplicates;
  for (const auto& [key, n] : mine.events) counts.events[key] += n;
  return answer;
}

HttpResponse IngestBatcher::RecordPurchases(const std::vector<Purchase>& items, Counts& counts,
                                            bool& rolled_back) {
  Json results = Json::array();
  int planned = 0, skipped = 0, cancelled = 0;
  if (Status s = scheduler_.PrepareIngest(items); !s.ok()) {
    rolled_back = true;
    spdlog::error("ingest: {}", s.message());
    return hooks_.store_failed(s, "cannot record purchases");
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto outcome = scheduler_.Ingest(items[i]);
    if (!outcome.ok() || outcome->kind == IngestOutcome::Kind::kConflict) {
      rolled_back = true;
      if (!outcome.ok()) {
        spdlog::error("ingest: {}", outcome.status().message());
        return hooks_.store_failed(outcome.status(), "cannot record purchase");
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

HttpResponse IngestBatcher::RecordEvents(const std::vector<EngagementEvent>& items, Counts& counts,
                                         bool& rolled_back) {
  // The answer is written as text: at 10,000 events a request, a JSON tree
  // of the results cost more than recording them.
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
      return hooks_.store_failed(outcome.status(), "cannot record event");
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

}  // namespace tp
