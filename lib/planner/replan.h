// Re-planning after the rules change (a reload): what becomes of one
// purchase's touchpoints under the new rules. Pure, like the planner.
//
// The policy (docs/operations.md, "Reloading"):
//  - a touchpoint that is no longer pending (fired, dead, cancelled,
//    suppressed, skipped) is never touched: ids are stable, so a step that
//    fired never fires again;
//  - a pending step the new rules still have is updated to its new due time,
//    topic and order; if its due time is unchanged it keeps its next_at (a
//    deferral by the send window or the frequency cap stands); if the new
//    time is already past misfire_grace it fires at once rather than being
//    skipped, since the buyer was due to get it anyway;
//  - a pending step the new rules no longer have (its cadence, step, tier or
//    product is gone, or it would be cancelled at birth now) is cancelled
//    with reason "rules changed";
//  - a step the new rules add is planned if it is still ahead, or late by
//    no more than misfire_grace; a step that was missed long ago is not
//    created at all.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "planner/planner.h"

namespace tp {

// `others` is the buyer's other purchases, sorted as PlanPurchase wants;
// `product` is the purchase's product in `rules` (-1 if the rules no longer
// have it) and `zone` the zone it was planned in; `events` the buyer's, as
// PlanPurchase reads them (a step added to a cadence the buyer's answer
// stopped is not planned).
PurchaseReplan ReplanPurchase(const Rules& rules, std::span<const PastPurchase> others,
                              const Purchase& purchase, int product, const Zone* zone,
                              std::span<const ExistingTouchpoint> existing, Instant now,
                              std::span<const BuyerEvent> events = {});

// Whether the parts of the rules that planning reads (zone, send window,
// products, tiers, cadences and their steps) are the same, so a reload from
// `a` to `b` has nothing to re-plan.
bool SamePlanning(const Rules& a, const Rules& b);

// Those parts as a SHA-256 in hex: equal for rules SamePlanning() calls the
// same (references by name, so reordering a list is a change only where
// order matters). The database keeps the one its pending touchpoints are
// planned by, so a start on other rules re-plans them.
std::string PlanningFingerprint(const Rules& rules);

}  // namespace tp
