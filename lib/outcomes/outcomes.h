// The outcomes report (docs/outcomes.md): trust built within trust_within
// of a purchase, repurchase before runout + repurchase_grace, and what the
// touchpoints fired achieved (engagement and repurchases credited to them).
// Fed one buyer at a time, so the daemon's reader thread can stream the
// store and simulate its replay without holding every buyer at once. Pure:
// no I/O, no clock (the report's as_of is given).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/time.h"

namespace tp {

// What a report groups by: purchases by their tier or product, or fired
// touchpoints by their cadence or topic.
enum class ReportBy : std::uint8_t { kTier, kProduct, kCadence, kTopic };
std::optional<ReportBy> ParseReportBy(std::string_view name);
std::string_view ReportByName(ReportBy by);

// One buyer's history as a store or simulate knows it, every list in time
// order (ties in arrival order).
struct BuyerHistory {
  struct Purchase {
    Instant purchased_at;
    Instant runout;  // planner/planner.h Runout()
    double amount = 0;
    std::string tier;
    std::string product;
    const Zone* zone = nullptr;  // the zone it was planned in: calendar days count there
  };
  struct Fire {
    Instant fire_at;
    std::uint64_t touchpoint = 0;  // the store's key for it
    std::string cadence;
    std::string topic;
    const Zone* zone = nullptr;
  };
  struct Event {
    Instant at;
    bool trust = false;          // a trust signal (engagement.trust)
    std::uint64_t credited = 0;  // the touchpoint it is credited to (a Fire's key); 0: none
  };
  std::vector<Purchase> purchases;
  std::vector<Fire> fires;  // fired and dead-lettered touchpoints
  std::vector<Event> events;
};

struct ReportOptions {
  Instant from, to;  // purchases (or, by cadence or topic, fires) in [from, to)
  Instant as_of;     // what happened after it is not known yet
  ReportBy by = ReportBy::kTier;
  OutcomeWindows windows;
};

// A row by tier or product.
struct PurchaseOutcomes {
  std::string key;
  std::int64_t purchases = 0;
  // Repurchase windows still open at as_of without a repurchase: out of
  // repurchase_rate's denominator. trust_open: the same for trust windows.
  std::int64_t open = 0;
  std::int64_t trust_open = 0;
  std::int64_t trust_built = 0;
  std::int64_t repurchased = 0;
  std::vector<double> days_to_repurchase;  // of each repurchased purchase
  std::optional<double> TrustRate() const;
  std::optional<double> RepurchaseRate() const;
  std::optional<double> MedianDaysToRepurchase() const;
};

// A row by cadence or topic: touchpoints fired in [from, to) and what is
// credited to them.
struct FireOutcomes {
  std::string key;
  std::int64_t fired = 0;
  std::int64_t engaged = 0;  // events credited
  std::int64_t repurchases = 0;
  double revenue = 0;  // the credited repurchases' amounts
  std::optional<double> EngagementRate() const;
};

class OutcomeReport {
 public:
  explicit OutcomeReport(ReportOptions options) : options_(options) {}

  // Adds one buyer's history (each buyer once).
  void Add(const BuyerHistory& buyer);
  // Adds what `other` (of the same options, over other buyers) counted.
  void Merge(OutcomeReport&& other);

  const ReportOptions& options() const { return options_; }
  // By key, for by tier or product; empty otherwise.
  const std::map<std::string, PurchaseOutcomes>& purchase_rows() const { return purchases_; }
  // By key, for by cadence or topic; empty otherwise.
  const std::map<std::string, FireOutcomes>& fire_rows() const { return fires_; }

 private:
  void AddPurchases(const BuyerHistory& buyer);
  void AddFires(const BuyerHistory& buyer);

  ReportOptions options_;
  std::map<std::string, PurchaseOutcomes> purchases_;
  std::map<std::string, FireOutcomes> fires_;
};

}  // namespace tp
