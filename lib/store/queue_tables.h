// The embedded queues' tables (QueueStore): a lease hides the longest
// visible messages under a fresh receipt; an ack deletes the current ones
// and writes their touchpoints' history. A fire puts the messages there
// (fire_tables.h). Internal to lib/store; SqliteStore forwards to it.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/database.h"
#include "store/event_rows.h"
#include "store/queue_store.h"
#include "store/row_writer.h"

namespace tp {

class QueueTables {
 public:
  QueueTables(Database& db, RowWriter& rows, EventRows& events);

  StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max, Millis visibility,
                                             Instant now);
  // TakeLease(), then the events made on this connection.
  StatusOr<std::vector<LeasedMessage>> Lease(std::string_view queue, int max, Millis visibility,
                                             Instant now);
  StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts, Instant now);
  StatusOr<std::int64_t> Depth(std::string_view queue);

 private:
  Database& db_;
  RowWriter& rows_;
  EventRows& events_;
  // A lease reads the longest visible messages, then hides them (ids as a
  // JSON array) in one UPDATE; each keeps the lease's random part as its
  // receipt.
  SQLite::Statement lease_take_;
  SQLite::Statement lease_;
  // The current messages among one lease's receipts (ids as a JSON array),
  // by row id: `+queue` keeps the planner off the queue's index, which
  // would scan the queue. Then all an ack's are deleted by id.
  SQLite::Statement ack_;
  SQLite::Statement ack_delete_;
  // The stored events of acked messages (touchpoint row ids as a JSON
  // array, each once: a queue has one message per touchpoint): those no
  // other message needs go, the others count one message less.
  SQLite::Statement drop_queue_events_;
  SQLite::Statement release_queue_events_;
};

}  // namespace tp
