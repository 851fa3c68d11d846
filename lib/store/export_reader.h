// A live database's purchases and engagement events, read for `touchpointctl
// export` (simulate's CSVs, to preview a rules change on the real buyer
// base). Everything is read under one read transaction: with SQLite's WAL
// or PostgreSQL's REPEATABLE READ that is a snapshot, so the daemons go on
// writing meanwhile and none of it shows. Nothing is ever written (PRAGMA
// query_only; a READ ONLY transaction).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/model.h"
#include "core/status.h"

namespace tp {

class ExportReader {
 public:
  // Opens `database`, a SQLite file (of schema 9, the first with events, to
  // this build's) or a PostgreSQL URL (store/pg_export_reader.h), and starts
  // the snapshot.
  static StatusOr<std::unique_ptr<ExportReader>> Open(const std::string& database);
  ExportReader() = default;
  virtual ~ExportReader() = default;
  ExportReader(const ExportReader&) = delete;
  ExportReader& operator=(const ExportReader&) = delete;

  // How many of each the snapshot holds.
  virtual StatusOr<std::int64_t> PurchaseCount() = 0;
  virtual StatusOr<std::int64_t> EventCount() = 0;
  // Every purchase in purchased_at order (ties in arrival order), as the
  // API received it; `visit` returns false to stop.
  virtual Status ForEachPurchase(const std::function<bool(const Purchase&)>& visit) = 0;
  // Every event in `at` order (ties in arrival order).
  virtual Status ForEachEvent(const std::function<bool(const EngagementEvent&)>& visit) = 0;
};

}  // namespace tp
