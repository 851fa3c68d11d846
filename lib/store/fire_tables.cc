#include "store/fire_tables.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace tp {

using sql::BindText;
using sql::FromMs;
using sql::Guard;
using sql::InsertMany;
using sql::InsertRows;
using sql::kRowsPerInsert;
using sql::Ms;

namespace {

constexpr const char* kEnqueue =
    "INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) VALUES";
constexpr const char* kOutboxInsert =
    "INSERT INTO deliveries (sink, touchpoint, event, next_attempt_at, created_at) VALUES";

}  // namespace

FireTables::FireTables(Database& db, RowWriter& rows, EventRows& events)
    : db_(db),
      rows_(rows),
      events_(events),
      next_wakeup_(db.sql(),
                   "SELECT next_at FROM touchpoints WHERE state = 0 ORDER BY next_at LIMIT 1"),
      take_due_(db.sql(), std::string("SELECT ") + kDueColumns + kTouchpointJoins +
                              "WHERE t.state = 0 AND t.next_at <= ? ORDER BY t.next_at, "
                              "t.due_at, t.buyer, t.cadence_order, t.step_order, t.id LIMIT ?"),
      // Dead-lettered touchpoints were fired too: they count against the
      // caps. From the touchpoints_fired index alone.
      fired_between_(db.sql(),
                     "SELECT fire_at, sinks FROM touchpoints WHERE buyer = (SELECT buyer FROM "
                     "touchpoints WHERE id = ?) AND state IN (1, 5) AND fire_at >= ? AND "
                     "fire_at < ?"),
      // Marks a batch (row ids as a JSON array) fired; one no longer pending
      // stays as it is. ApplyOutcomes() knows beforehand which are pending:
      // RETURNING would say, but doubled the statement's cost per row.
      fire_(db.sql(),
            "UPDATE touchpoints SET state = 1, fire_at = ?1, sinks = ?3 WHERE id IN "
            "(SELECT value FROM json_each(?2)) AND state = 0"),
      // Which of a batch (row ids as a JSON array) are still pending.
      still_pending_(db.sql(),
                     "SELECT id FROM touchpoints WHERE id IN (SELECT value FROM json_each(?1)) "
                     "AND state = 0"),
      data_version_(db.sql(), "PRAGMA data_version"),
      defer_(db.sql(), "UPDATE touchpoints SET next_at = ? WHERE id = ? AND state = 0"),
      skip_(db.sql(), "UPDATE touchpoints SET state = 4, reason = ? WHERE id = ? AND state = 0"),
      enqueue_(db.sql(), InsertRows(kEnqueue, 4, 1)),
      enqueue_many_(db.sql(), InsertRows(kEnqueue, 4, kRowsPerInsert)),
      outbox_insert_(db.sql(), InsertRows(kOutboxInsert, 5, 1)),
      outbox_insert_many_(db.sql(), InsertRows(kOutboxInsert, 5, kRowsPerInsert)) {}

void FireTables::SetRouting(const Rules& rules) { routing_.Set(rules); }

FireTables::FileVersion FireTables::Version() {
  data_version_.tryReset();
  data_version_.executeStep();
  const FileVersion v{sqlite3_total_changes64(db_.sql().getHandle()),
                      data_version_.getColumn(0).getInt64()};
  data_version_.tryReset();
  return v;
}

StatusOr<std::optional<Instant>> FireTables::NextWakeup() {
  return Guard("next wakeup", [&]() -> StatusOr<std::optional<Instant>> {
    auto& q = next_wakeup_;
    q.tryReset();
    if (!q.executeStep()) return std::optional<Instant>();
    const Instant at = FromMs(q.getColumn(0).getInt64());
    q.tryReset();
    return std::optional<Instant>(at);
  });
}

StatusOr<std::vector<DueTouchpoint>> FireTables::TakeDue(Instant now, std::size_t max) {
  return Guard("take due touchpoints", [&]() -> StatusOr<std::vector<DueTouchpoint>> {
    due_.clear();
    auto& q = take_due_;
    q.tryReset();
    q.bind(1, Ms(now));
    q.bind(2, static_cast<std::int64_t>(max));
    while (q.executeStep()) ReadDue(q, zones_, due_.emplace_back());
    q.tryReset();
    due_version_ = Version();
    // Views are made only now: the vector no longer moves its strings.
    std::vector<DueTouchpoint> out;
    out.reserve(due_.size());
    for (const DueRow& r : due_) out.push_back({static_cast<std::uint64_t>(r.rowid), r.View()});
    return out;
  });
}

StatusOr<std::vector<FiredTouchpoint>> FireTables::FiredBetween(const DueTouchpoint& due,
                                                                Instant from, Instant to,
                                                                bool sinks) {
  return Guard(
      "read the buyer's fired touchpoints", [&]() -> StatusOr<std::vector<FiredTouchpoint>> {
        auto& q = fired_between_;
        q.tryReset();
        q.bind(1, static_cast<std::int64_t>(due.handle));
        q.bind(2, Ms(from));
        q.bind(3, Ms(to));
        std::vector<FiredTouchpoint> out;
        while (q.executeStep()) {
          FiredTouchpoint& f = out.emplace_back(FiredTouchpoint{FromMs(q.getColumn(0).getInt64())});
          if (sinks && !q.isColumnNull(1)) f.sinks = q.getColumn(1).getString();
        }
        q.tryReset();
        return out;
      });
}

Status FireTables::ApplyOutcomes(std::span<const DueTouchpoint> due,
                                 std::span<const FiringOutcome> outcomes) {
  if (due.size() != outcomes.size()) return Status::Error("apply outcomes: size mismatch");
  return db_.Atomically("apply firing outcomes", [&] {
    // Fired ones in bulk, per fire time and routing (in practice one time
    // per batch, and a routing per step with sinks of its own): a statement
    // for each, not one per touchpoint.
    std::vector<const Routing*> routing(due.size(), nullptr);
    std::map<std::pair<std::int64_t, const Routing*>, sql::IdList> fired_at;  // -> row ids
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (outcomes[i].kind != FiringOutcome::Kind::kFired) continue;
      routing[i] = &routing_.Of(due[i].view.cadence, due[i].view.step);
      fired_at[{Ms(outcomes[i].at), routing[i]}].Add(static_cast<std::int64_t>(due[i].handle));
    }
    // The rows TakeDue() just read as pending, and nothing written since
    // (here or by another connection): they all are still. Otherwise each
    // one is checked.
    bool unchanged = due_version_ && *due_version_ == Version() && due.size() == due_.size();
    for (std::size_t i = 0; unchanged && i < due.size(); ++i) {
      unchanged = static_cast<std::int64_t>(due[i].handle) == due_[i].rowid;
    }
    due_version_.reset();
    std::vector<std::int64_t> fired;  // still pending, so fired now
    for (auto& [key, list] : fired_at) {
      const auto [at, route] = key;
      const std::string& ids = list.Close();
      fire_.tryReset();
      fire_.bind(1, at);
      BindText(fire_, 2, ids);
      BindText(fire_, 3, route->sinks);
      if (unchanged) {
        for (std::size_t i = 0; i < due.size(); ++i) {
          if (routing[i] == route && Ms(outcomes[i].at) == at) {
            fired.push_back(static_cast<std::int64_t>(due[i].handle));
          }
        }
      } else {
        auto& p = still_pending_;
        p.tryReset();
        BindText(p, 1, ids);
        while (p.executeStep()) fired.push_back(p.getColumn(0).getInt64());
        p.tryReset();
      }
      fire_.exec();
      fire_.tryReset();
    }
    std::sort(fired.begin(), fired.end());

    // A row per sink: queue messages (their event is made when handed out)
    // and outbox entries (the event in each, made now from the rows, as a
    // lease makes it: `fire_at` is set).
    struct Row {
      const std::string* sink = nullptr;
      std::int64_t touchpoint = 0;
      const std::string* event = nullptr;  // outbox entries only
      std::int64_t at = 0;  // visible from / first attempt at, and created at: the fire
    };
    std::vector<Row> queued, outboxed;
    std::vector<std::int64_t> pushed;  // the touchpoints with outbox entries, for their events
    // History lines by (reason, time): one statement each.
    std::map<std::pair<std::string_view, std::int64_t>, sql::IdList> history;
    for (std::size_t i = 0; i < due.size(); ++i) {
      const FiringOutcome& o = outcomes[i];
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      if (o.kind != FiringOutcome::Kind::kFired ||
          !std::binary_search(fired.begin(), fired.end(), rowid)) {
        continue;
      }
      const Routing& routes = *routing[i];
      for (const Route& route : routes.routes) {
        const Row r{&route.sink, rowid, nullptr, Ms(o.at)};
        if (route.type == Sink::Type::kQueue) {
          queued.push_back(r);
          continue;
        }
        if (outboxed.empty() || outboxed.back().touchpoint != rowid) {
          pushed.push_back(rowid);
        }
        outboxed.push_back(r);
      }
      history[{routes.fired_reason, Ms(o.at)}].Add(rowid);
    }
    InsertMany(enqueue_many_, enqueue_, queued.size(), 4,
               [&](SQLite::Statement& q, int p, std::size_t i) {
                 q.bindNoCopy(p, *queued[i].sink);
                 q.bind(p + 1, queued[i].touchpoint);
                 q.bind(p + 2, queued[i].at);
                 q.bind(p + 3, queued[i].at);
               });
    const auto events = events_.Make(pushed, /*stored=*/false);
    for (Row& r : outboxed) {
      auto it = events.find(r.touchpoint);
      if (it == events.end()) {
        throw std::runtime_error("touchpoint row " + std::to_string(r.touchpoint) +
                                 " vanished while firing");
      }
      r.event = &it->second;
    }
    InsertMany(outbox_insert_many_, outbox_insert_, outboxed.size(), 5,
               [&](SQLite::Statement& q, int p, std::size_t i) {
                 q.bindNoCopy(p, *outboxed[i].sink);
                 q.bind(p + 1, outboxed[i].touchpoint);
                 q.bindNoCopy(p + 2, *outboxed[i].event);
                 q.bind(p + 3, outboxed[i].at);
                 q.bind(p + 4, outboxed[i].at);
               });
    for (auto& [key, ids] : history) {
      rows_.AddHistoryEach(ids.Close(), FromMs(key.second), TouchpointState::kFired, key.first);
    }

    for (std::size_t i = 0; i < due.size(); ++i) {
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      const FiringOutcome& o = outcomes[i];
      switch (o.kind) {
        case FiringOutcome::Kind::kFired:
          break;
        case FiringOutcome::Kind::kDeferred:
          defer_.tryReset();
          defer_.bind(1, Ms(o.at));
          defer_.bind(2, rowid);
          if (defer_.exec() == 0) break;
          rows_.AddHistory(
              rowid, due[i].view.next_at, TouchpointState::kPending,
              "deferred to " + FormatRfc3339(o.at, due[i].view.zone) + ": " + o.reason);
          break;
        case FiringOutcome::Kind::kSkipped:
          skip_.tryReset();
          BindText(skip_, 1, o.reason);
          skip_.bind(2, rowid);
          if (skip_.exec() == 0) break;
          rows_.AddHistory(rowid, o.at, TouchpointState::kSkipped, o.reason);
          break;
      }
    }
  });
}

}  // namespace tp
