#include "store/export_reader.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pg/url.h"
#include "store/pg_export_reader.h"
#include "store/schema.h"
#include "store/sql.h"

namespace tp {

using sql::Guard;

namespace {

constexpr int kFirstWithEvents = 9;

// A SQLite file's, read as the daemon writes it.
class SqliteExportReader final : public ExportReader {
 public:
  explicit SqliteExportReader(const std::string& path) : db_(path, SQLite::OPEN_READWRITE) {}
  // Checks the schema and starts the snapshot. Throws.
  Status Start(const std::string& path);

  StatusOr<std::int64_t> PurchaseCount() override;
  StatusOr<std::int64_t> EventCount() override;
  Status ForEachPurchase(const std::function<bool(const Purchase&)>& visit) override;
  Status ForEachEvent(const std::function<bool(const EngagementEvent&)>& visit) override;

 private:
  SQLite::Database db_;
  std::unique_ptr<SQLite::Transaction> snapshot_;
};

Status SqliteExportReader::Start(const std::string& path) {
  // Read-write only so a WAL file can be read without its writer; query_only
  // makes SQLite refuse any write on this connection.
  db_.setBusyTimeout(5000);
  db_.exec("PRAGMA query_only = 1");
  // ReadVersion() would create its table: read it only if it is there.
  int version = 0;
  if (db_.tableExists("schema_version")) {
    SQLite::Statement q(db_, "SELECT version FROM schema_version");
    if (q.executeStep()) version = q.getColumn(0).getInt();
  }
  if (version < kFirstWithEvents || version > kSchemaVersion) {
    return Status::Error(path + " has schema version " + std::to_string(version) +
                         "; this touchpointctl exports versions " +
                         std::to_string(kFirstWithEvents) + " to " +
                         std::to_string(kSchemaVersion) +
                         (version > kSchemaVersion ? " (upgrade touchpointctl)"
                                                   : " (start touchpointd on it once)"));
  }
  // The snapshot begins with the transaction's first read.
  snapshot_ = std::make_unique<SQLite::Transaction>(db_);
  return Status::Ok();
}

StatusOr<std::int64_t> SqliteExportReader::PurchaseCount() {
  return Guard("export", [&]() -> StatusOr<std::int64_t> {
    return db_.execAndGet("SELECT count(*) FROM purchases").getInt64();
  });
}

StatusOr<std::int64_t> SqliteExportReader::EventCount() {
  return Guard("export", [&]() -> StatusOr<std::int64_t> {
    return db_.execAndGet("SELECT count(*) FROM events").getInt64();
  });
}

Status SqliteExportReader::ForEachPurchase(const std::function<bool(const Purchase&)>& visit) {
  return Guard("export", [&]() -> Status {
    SQLite::Statement q(db_,
                        "SELECT p.order_id, b.buyer_id, p.product, p.quantity, p.amount, "
                        "p.purchased_at, p.timezone, p.attributes "
                        "FROM purchases p JOIN buyers b ON b.id = p.buyer "
                        "ORDER BY p.purchased_at, p.id");
    Purchase p;
    while (q.executeStep()) {
      p.order_id = q.getColumn(0).getString();
      p.buyer_id = q.getColumn(1).getString();
      p.product = q.getColumn(2).getString();
      p.quantity = q.getColumn(3).getInt64();
      p.amount = q.getColumn(4).getDouble();
      p.purchased_at = sql::FromMs(q.getColumn(5).getInt64());
      p.timezone = q.getColumn(6).getString();
      p.attributes = q.getColumn(7).isNull() ? std::string() : q.getColumn(7).getString();
      if (!visit(p)) break;
    }
    return Status::Ok();
  });
}

Status SqliteExportReader::ForEachEvent(const std::function<bool(const EngagementEvent&)>& visit) {
  return Guard("export", [&]() -> Status {
    SQLite::Statement q(db_,
                        "SELECT e.event_id, b.buyer_id, e.type, e.at, e.touchpoint_id "
                        "FROM events e JOIN buyers b ON b.id = e.buyer ORDER BY e.at, e.id");
    EngagementEvent e;
    while (q.executeStep()) {
      e.event_id = q.getColumn(0).getString();
      e.buyer_id = q.getColumn(1).getString();
      e.type = q.getColumn(2).getString();
      e.at = sql::FromMs(q.getColumn(3).getInt64());
      e.touchpoint_id = q.getColumn(4).isNull() ? std::string() : q.getColumn(4).getString();
      if (!visit(e)) break;
    }
    return Status::Ok();
  });
}

}  // namespace

StatusOr<std::unique_ptr<ExportReader>> ExportReader::Open(const std::string& database) {
  if (pg::IsUrl(database)) return OpenPgExportReader(database);
  // Named with the system's reason: SQLite would say "unable to open".
  if (::access(database.c_str(), R_OK) != 0) {
    return Status::Error("cannot read the database " + database + ": " + std::strerror(errno));
  }
  std::unique_ptr<SqliteExportReader> reader;
  Status s = Guard("export", [&]() -> Status {
    reader = std::make_unique<SqliteExportReader>(database);
    return reader->Start(database);
  });
  if (!s.ok()) return s;
  return std::unique_ptr<ExportReader>(std::move(reader));
}

}  // namespace tp
