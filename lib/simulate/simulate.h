// `touchpointctl simulate`: replays a purchases CSV through the scheduler
// core on a virtual clock and prints what would happen.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/time.h"

namespace tp {

struct SimulateOptions {
  std::string purchases_path;
  // Stop the virtual clock here: purchases after it are not ingested and
  // touchpoints not fired by then are printed as pending. Default: run until
  // every touchpoint is final.
  std::optional<Instant> until;
  std::size_t max_errors = 100;  // CSV errors reported before giving up
};

struct SimulateResult {
  // "FILE:LINE: error: ..." for every bad row (up to max_errors); when not
  // empty nothing was simulated.
  std::vector<std::string> errors;
  std::uint64_t purchases = 0;   // rows ingested
  std::uint64_t duplicates = 0;  // rows repeating an earlier order exactly
  std::uint64_t lines = 0;       // touchpoint lines written
  bool ok() const { return errors.empty(); }
};

// Validates the whole file first (nothing is printed unless every row is
// valid and no order id conflicts), then ingests purchases in purchased_at
// order (ties in file order), each at its own purchased_at on the virtual
// clock, firing what comes due in between. Touchpoints due at the same
// instant as a purchase fire before it is ingested.
//
// Writes one JSON object per touchpoint to `out`: fired ones as they fire
// (so in fire_at order), then the cancelled, suppressed and skipped ones in
// the order they became final, then the still pending ones in firing order.
// Memory grows with buyers and live touchpoints, not with output.
SimulateResult Simulate(const std::shared_ptr<const Rules>& rules, const SimulateOptions& options,
                        std::ostream& out);

}  // namespace tp
