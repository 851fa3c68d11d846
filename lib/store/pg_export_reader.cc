#include "store/pg_export_reader.h"

#include "pg/connection.h"
#include "pg/url.h"
#include "store/pg/schema.h"
#include "store/values.h"

namespace tp {
namespace {

using sql::FromMs;

class PgExportReader final : public ExportReader {
 public:
  explicit PgExportReader(std::unique_ptr<pg::Connection> conn) : c_(std::move(conn)) {}

  StatusOr<std::int64_t> PurchaseCount() override {
    return Count("count the purchases", "SELECT count(*) FROM purchases");
  }
  StatusOr<std::int64_t> EventCount() override {
    return Count("count the events", "SELECT count(*) FROM events");
  }

  Status ForEachPurchase(const std::function<bool(const Purchase&)>& visit) override {
    Purchase p;
    return Scan("read the purchases",
                "SELECT p.order_id, b.buyer_id, p.product, p.quantity, p.amount, p.purchased_at, "
                "p.timezone, p.attributes FROM purchases p JOIN buyers b ON b.id = p.buyer "
                "ORDER BY p.purchased_at, p.id",
                [&](const pg::Result& r, int i) {
                  p.order_id = r.Text(i, 0);
                  p.buyer_id = r.Text(i, 1);
                  p.product = r.Text(i, 2);
                  p.quantity = r.Int64(i, 3);
                  p.amount = r.Double(i, 4);
                  p.purchased_at = FromMs(r.Int64(i, 5));
                  p.timezone = r.Text(i, 6);
                  p.attributes = r.IsNull(i, 7) ? std::string_view() : r.Text(i, 7);
                  return visit(p);
                });
  }

  Status ForEachEvent(const std::function<bool(const EngagementEvent&)>& visit) override {
    EngagementEvent e;
    return Scan("read the events",
                "SELECT e.event_id, b.buyer_id, e.type, e.at, e.touchpoint_id FROM events e "
                "JOIN buyers b ON b.id = e.buyer ORDER BY e.at, e.id",
                [&](const pg::Result& r, int i) {
                  e.event_id = r.Text(i, 0);
                  e.buyer_id = r.Text(i, 1);
                  e.type = r.Text(i, 2);
                  e.at = FromMs(r.Int64(i, 3));
                  e.touchpoint_id = r.IsNull(i, 4) ? std::string_view() : r.Text(i, 4);
                  return visit(e);
                });
  }

 private:
  StatusOr<std::int64_t> Count(std::string_view what, const char* sql) {
    return pg::Guard(what, [&]() -> StatusOr<std::int64_t> { return c_->Exec(sql).Int64(0, 0); });
  }

  // Each row of `sql` to `row` (which returns false to stop), through a
  // cursor, kBatch rows a fetch.
  Status Scan(std::string_view what, const std::string& sql,
              const std::function<bool(const pg::Result&, int)>& row) {
    static constexpr int kBatch = 4096;
    return pg::Guard(what, [&]() -> Status {
      c_->Exec("DECLARE export NO SCROLL CURSOR FOR " + sql);
      for (;;) {
        pg::Result batch = c_->Exec("FETCH " + std::to_string(kBatch) + " FROM export");
        for (int i = 0; i < batch.rows(); ++i) {
          if (!row(batch, i)) return Close();
        }
        if (batch.rows() < kBatch) return Close();
      }
    });
  }
  Status Close() {
    c_->Exec("CLOSE export");
    return Status::Ok();
  }

  std::unique_ptr<pg::Connection> c_;
};

}  // namespace

StatusOr<std::unique_ptr<ExportReader>> OpenPgExportReader(const std::string& url) {
  return pg::Guard("export from " + pg::Redacted(url),
                   [&]() -> StatusOr<std::unique_ptr<ExportReader>> {
                     auto conn = pg::Connection::Open(url, "touchpointctl-export");
                     conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
                     // Every schema has events; a database no daemon has opened has none.
                     const int version = pgstore::ReadVersion(*conn);
                     if (version < 1 || version > pgstore::kSchemaVersion) {
                       return Status::Error(
                           pg::Redacted(url) + " has schema version " + std::to_string(version) +
                           "; this touchpointctl exports versions 1 to " +
                           std::to_string(pgstore::kSchemaVersion) +
                           (version > pgstore::kSchemaVersion ? " (upgrade touchpointctl)"
                                                              : " (start touchpointd on it once)"));
                     }
                     return std::unique_ptr<ExportReader>(new PgExportReader(std::move(conn)));
                   });
}

}  // namespace tp
