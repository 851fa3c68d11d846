// A live database's purchases and engagement events, read for `touchpointctl
// export` (simulate's CSVs, to preview a rules change on the real buyer
// base). Everything is read under one read transaction: with the daemon's
// WAL that is a snapshot, so the daemon goes on writing meanwhile and none
// of it shows. Nothing is ever written (PRAGMA query_only).
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
  // Opens `path` (a database of schema 9, the first with events, to this
  // build's) and starts the snapshot.
  static StatusOr<std::unique_ptr<ExportReader>> Open(const std::string& path);
  ~ExportReader();
  ExportReader(const ExportReader&) = delete;
  ExportReader& operator=(const ExportReader&) = delete;

  // How many of each the snapshot holds.
  StatusOr<std::int64_t> PurchaseCount();
  StatusOr<std::int64_t> EventCount();
  // Every purchase in purchased_at order (ties in arrival order), as the
  // API received it; `visit` returns false to stop.
  Status ForEachPurchase(const std::function<bool(const Purchase&)>& visit);
  // Every event in `at` order (ties in arrival order).
  Status ForEachEvent(const std::function<bool(const EngagementEvent&)>& visit);

 private:
  struct Impl;
  explicit ExportReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
