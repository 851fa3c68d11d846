// `touchpointctl simulate`: replays a purchases CSV through the scheduler
// core on a virtual clock and prints what would happen.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/time.h"
#include "outcomes/outcomes.h"
#include "scheduler/store.h"

namespace tp {

class SimDigest;

struct SimulateOptions {
  std::string purchases_path;
  // Engagement events (event_id,buyer_id,type,at,touchpoint_id), applied on
  // the same clock: stop_on, `when` and credit as in the daemon.
  std::optional<std::string> events_path;
  // Stop the virtual clock here: purchases after it are not ingested and
  // touchpoints not fired by then are printed as pending. Default: run until
  // every touchpoint is final.
  std::optional<Instant> until;
  std::size_t max_errors = 100;  // CSV errors reported before giving up
  // Instead of the touchpoints, the outcomes report grouped so (over all
  // purchases, as of --until or the replay's end).
  std::optional<ReportBy> report;
  // Instead of the touchpoints, feed this digest (simulate/digest.h; with
  // events, the outcomes by tier and by step too). Must outlive the call.
  SimDigest* digest = nullptr;
  // With `digest`: also handed each touchpoint the digest is (--compare).
  std::function<void(const TouchpointView&)> on_touchpoint;
};

struct SimulateResult {
  // "FILE:LINE: error: ..." for every bad row (up to max_errors); when not
  // empty nothing was simulated.
  std::vector<std::string> errors;
  std::uint64_t purchases = 0;         // rows ingested
  std::uint64_t duplicates = 0;        // rows repeating an earlier order exactly
  std::uint64_t events = 0;            // event rows recorded
  std::uint64_t event_duplicates = 0;  // event rows repeating an earlier event exactly
  // "FILE:LINE: warning: ..." for each event the daemon would refuse (its
  // touchpoint_id names none of the buyer's touchpoints); the run goes on.
  std::vector<std::string> warnings;
  std::uint64_t lines = 0;              // touchpoint lines written
  std::optional<OutcomeReport> report;  // with SimulateOptions::report
  bool ok() const { return errors.empty(); }
};

// Validates the whole of both files first (nothing is printed unless every
// row is valid and no order or event id conflicts), then ingests purchases
// in purchased_at order and records events in `at` order (ties in file
// order; at one instant purchases first), each at its own time on the
// virtual clock, firing what comes due in between. Touchpoints due at the
// same instant as a purchase or event fire before it.
//
// Writes one JSON object per touchpoint to `out`: fired ones as they fire
// (so in fire_at order), then the cancelled, suppressed and skipped ones in
// the order they became final, then the still pending ones in firing order.
// Memory grows with buyers and live touchpoints, not with output.
SimulateResult Simulate(const std::shared_ptr<const Rules>& rules, const SimulateOptions& options,
                        std::ostream& out);

}  // namespace tp
