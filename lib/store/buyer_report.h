// A buyer's timeline as GET /v1/buyers shows it (ReportStore): purchases,
// touchpoints and each one's history. Internal to lib/store; SqliteStore
// forwards to it.
#pragma once

#include <optional>
#include <string_view>

#include "store/database.h"
#include "store/report_store.h"
#include "store/row_writer.h"

namespace tp {

class BuyerReports {
 public:
  BuyerReports(Database& db, RowWriter& rows) : db_(db), rows_(rows) {}

  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id,
                                                std::int64_t last_purchases);

 private:
  Database& db_;
  RowWriter& rows_;
};

}  // namespace tp
