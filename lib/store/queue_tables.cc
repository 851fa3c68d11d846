#include "store/queue_tables.h"

#include <algorithm>
#include <map>

#include "store/gauges.h"
#include "store/sql.h"

namespace tp {

using sql::BindText;
using sql::Guard;
using sql::Ms;
using sql::RandomHex;

QueueTables::QueueTables(Database& db, RowWriter& rows, EventRows& events)
    : db_(db),
      rows_(rows),
      events_(events),
      lease_take_(db.sql(),
                  "SELECT id, deliveries, touchpoint FROM queue_messages WHERE queue = ?1 AND "
                  "visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3"),
      lease_(db.sql(),
             "UPDATE queue_messages SET receipt = ?1, visible_at = ?2, deliveries = deliveries + 1 "
             "WHERE id IN (SELECT value FROM json_each(?3))"),
      ack_(db.sql(),
           "SELECT id, touchpoint FROM queue_messages WHERE +queue = ?1 AND receipt = ?2 AND "
           "id IN (SELECT value FROM json_each(?3))"),
      ack_delete_(db.sql(),
                  "DELETE FROM queue_messages WHERE id IN (SELECT value FROM json_each(?1))"),
      drop_queue_events_(db.sql(),
                         "DELETE FROM queue_events WHERE touchpoint IN (SELECT value FROM "
                         "json_each(?1)) AND messages <= 1"),
      release_queue_events_(db.sql(),
                            "UPDATE queue_events SET messages = messages - 1 WHERE touchpoint IN "
                            "(SELECT value FROM json_each(?1))") {}

StatusOr<std::vector<LeasedRow>> QueueTables::TakeLease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  std::vector<LeasedRow> rows;
  Status s = Guard("lease", [&] {
    // One random part per lease (96 bits): a receipt, the message's id and
    // this part, is still unguessable and unique per message and hand-out.
    const std::string token = RandomHex(12);
    auto& q = lease_take_;
    q.tryReset();
    BindText(q, 1, queue);
    q.bind(2, Ms(now));
    q.bind(3, max);
    sql::IdList ids;
    while (q.executeStep()) {
      LeasedRow& r = rows.emplace_back();
      r.id = q.getColumn(0).getInt64();
      r.message.deliveries = q.getColumn(1).getInt() + 1;
      r.touchpoint = q.getColumn(2).getInt64();
      r.message.receipt = std::to_string(r.id) + "." + token;
      ids.Add(r.id);
    }
    q.tryReset();
    if (rows.empty()) return Status::Ok();
    auto& u = lease_;
    u.tryReset();
    BindText(u, 1, token);
    u.bind(2, Ms(now + visibility));
    BindText(u, 3, ids.Close());
    u.exec();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // RETURNING has no defined order: hand them out in enqueue order.
  std::sort(rows.begin(), rows.end(),
            [](const LeasedRow& a, const LeasedRow& b) { return a.id < b.id; });
  return rows;
}

StatusOr<std::vector<LeasedMessage>> QueueTables::Lease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  auto rows = TakeLease(queue, max, visibility, now);
  if (!rows.ok()) return rows.status();
  if (Status s = events_.Fill(*rows, queue); !s.ok()) return s;
  std::vector<LeasedMessage> out;
  out.reserve(rows->size());
  for (LeasedRow& r : *rows) out.push_back(std::move(r.message));
  return out;
}

StatusOr<int> QueueTables::Ack(std::string_view queue, std::span<const std::string> receipts,
                               Instant now) {
  // Receipts by their lease's random part, each with its message ids as a
  // JSON array: one DELETE per lease, usually one per ack.
  std::map<std::string_view, sql::IdList, std::less<>> ids_by_lease;
  for (const std::string& receipt : receipts) {
    if (auto r = sql::SplitReceipt(receipt)) ids_by_lease[r->token].AddDigits(r->id_digits);
  }
  int acked = 0;
  const std::string reason = "acked on " + std::string(queue);
  Status s = db_.Atomically("ack", [&] {
    sql::IdList messages, touched;  // the current ones, and their touchpoints
    for (auto& [token, ids] : ids_by_lease) {
      auto& q = ack_;
      q.tryReset();
      BindText(q, 1, queue);
      BindText(q, 2, token);
      BindText(q, 3, ids.Close());
      while (q.executeStep()) {
        messages.Add(q.getColumn(0).getInt64());
        touched.Add(q.getColumn(1).getInt64());
        ++acked;
      }
      q.tryReset();
    }
    if (acked == 0) return;
    const std::string& touchpoints = touched.Close();
    auto& d = ack_delete_;
    d.tryReset();
    BindText(d, 1, messages.Close());
    d.exec();
    if (events_.stored_left()) {
      auto& e = drop_queue_events_;
      e.tryReset();
      BindText(e, 1, touchpoints);
      if (e.exec() < acked) {  // some event still serves another queue, or none was stored
        auto& r = release_queue_events_;
        r.tryReset();
        BindText(r, 1, touchpoints);
        r.exec();
      }
    }
    rows_.AddHistoryEach(touchpoints, now, TouchpointState::kFired, reason);
  });
  if (!s.ok()) return s;
  return acked;
}

StatusOr<std::int64_t> QueueTables::Depth(std::string_view queue) {
  return db_.Count("queue depth", kQueueDepth, queue);
}

}  // namespace tp
