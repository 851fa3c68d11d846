#include "store/touchpoint_row.h"

#include "core/ids.h"
#include "store/sql.h"

namespace tp {

using sql::FromMs;
using sql::TextView;

void ReadDue(SQLite::Statement& q, sql::ZoneCache& zones, DueRow& r) {
  r.rowid = q.getColumn(0).getInt64();
  r.buyer_id = TextView(q.getColumn(1));
  r.cadence = TextView(q.getColumn(2));
  r.zone = zones.Named(TextView(q.getColumn(3)));
  r.due_at = FromMs(q.getColumn(4).getInt64());
  r.next_at = FromMs(q.getColumn(5).getInt64());
  r.ready_at = FromMs(q.getColumn(6).getInt64());
  r.step = TextView(q.getColumn(7));
}

void ReadRow(SQLite::Statement& q, sql::ZoneCache& zones, DueRow& r) {
  r.rowid = q.getColumn(0).getInt64();
  r.buyer_id = TextView(q.getColumn(2));
  r.order_id = TextView(q.getColumn(3));
  r.cadence = TextView(q.getColumn(4));
  r.step = TextView(q.getColumn(1));
  r.tp_id = TouchpointId(r.order_id, r.cadence, r.step);
  r.topic = TextView(q.getColumn(5));
  r.tier = TextView(q.getColumn(6));
  r.product = TextView(q.getColumn(7));
  r.zone = zones.Named(TextView(q.getColumn(8)));
  r.due_at = FromMs(q.getColumn(9).getInt64());
  r.next_at = FromMs(q.getColumn(10).getInt64());
  r.attributes = TextView(q.getColumn(11));
  r.fire_at.reset();
  if (!q.getColumn(12).isNull()) r.fire_at = FromMs(q.getColumn(12).getInt64());
}

}  // namespace tp
