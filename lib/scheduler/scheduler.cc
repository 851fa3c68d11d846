#include "scheduler/scheduler.h"

#include <map>
#include <utility>

#include "planner/planner.h"
#include "planner/purchase_check.h"
#include "planner/window.h"

namespace tp {
namespace {

// Touchpoints fired per transaction. A commit writes every page it changed,
// and the last page of each table and index is rewritten at every commit:
// 2,048 wrote a quarter fewer bytes per touchpoint than 512 (issue 6).
constexpr std::size_t kBatchSize = 2048;

// "2d8h30m5s", leaving out zero parts; "0s" for nothing.
std::string DurationText(Millis d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  std::string out;
  for (auto [unit, name] : {std::pair<std::int64_t, char>{86400, 'd'}, {3600, 'h'}, {60, 'm'}}) {
    if (s >= unit) {
      out += std::to_string(s / unit) + name;
      s %= unit;
    }
  }
  if (s > 0 || out.empty()) out += std::to_string(s) + "s";
  return out;
}

std::string MissedReason(Millis late, const Rules& rules) {
  return "missed by " + DurationText(late) + ", more than misfire_grace " +
         rules.misfire_grace.ToString();
}

}  // namespace

Scheduler::Scheduler(ScheduleStore& store, const Clock& clock, const RulesInForce& rules)
    : store_(store), clock_(clock), rules_(rules) {}

const Zone* Scheduler::ZoneFor(std::string_view name) const {
  return name.empty() ? rules_->timezone : FindZone(name);
}

StatusOr<IngestOutcome> Scheduler::Ingest(const Purchase& purchase) {
  // Callers check first, to name the field; this keeps whatever they miss
  // from the planner's arithmetic.
  if (auto problem = CheckPurchase(purchase, *rules_)) return Status::Error(problem->message);
  const int product = rules_->ProductIndex(purchase.product);
  const Zone* zone = ZoneFor(purchase.timezone);

  auto match = store_.MatchPurchase(purchase, zone);
  if (!match.ok()) return match.status();
  if (match->kind == PurchaseMatch::Kind::kSame) {
    return IngestOutcome{IngestOutcome::Kind::kDuplicate};
  }
  if (match->kind == PurchaseMatch::Kind::kConflict) {
    IngestOutcome conflict{IngestOutcome::Kind::kConflict};
    conflict.conflict_field = std::move(match->field);
    return conflict;
  }

  auto buyer = store_.LoadBuyer(purchase.buyer_id);
  if (!buyer.ok()) return buyer.status();
  Plan plan = PlanPurchase(*rules_, buyer->history, purchase, product, zone);
  if (buyer->opted_out) plan.touchpoints.clear();

  // An order recorded long after its steps were due: those missed by more
  // than misfire_grace are skipped now, as the first firing pass would.
  const Instant now = clock_.Now();
  const Millis grace = rules_->misfire_grace.Exact();
  for (PlannedTouchpoint& t : plan.touchpoints) {
    if (t.state == TouchpointState::kPending && now - t.next_at > grace) {
      t.state = TouchpointState::kSkipped;
      t.reason = MissedReason(now - t.next_at, *rules_);
    }
  }
  auto cancelled = store_.CancelEarlier(purchase.buyer_id, purchase.purchased_at, purchase.order_id,
                                        now, "repurchased: order " + purchase.order_id);
  if (!cancelled.ok()) return cancelled.status();
  if (Status s = store_.AddPurchase(purchase, zone, plan.tier, plan.touchpoints, now); !s.ok()) {
    return s;
  }
  IngestOutcome outcome{IngestOutcome::Kind::kPlanned, plan.tier};
  for (const auto& t : plan.touchpoints) {
    switch (t.state) {
      case TouchpointState::kPending:
        ++outcome.planned;
        break;
      case TouchpointState::kSkipped:
        ++outcome.skipped;
        break;
      default:
        ++outcome.cancelled;
        break;
    }
    if (observer_ != nullptr)
      observer_->OnTouchpoints(rules_->cadences[t.cadence].name, t.state, 1);
  }
  Report(*cancelled, TouchpointState::kCancelled);
  return outcome;
}

void Scheduler::Report(const CadenceCounts& counts, TouchpointState state) {
  if (observer_ == nullptr) return;
  for (const auto& [cadence, n] : counts) observer_->OnTouchpoints(cadence, state, n);
}

Status Scheduler::OptOut(std::string_view buyer_id) {
  auto suppressed = store_.SetOptedOut(buyer_id, true, clock_.Now());
  if (!suppressed.ok()) return suppressed.status();
  Report(*suppressed, TouchpointState::kSuppressed);
  return Status::Ok();
}

Status Scheduler::OptIn(std::string_view buyer_id) {
  return store_.SetOptedOut(buyer_id, false, clock_.Now()).status();
}

StatusOr<RunStats> Scheduler::RunDue(std::size_t max_batches) {
  const Instant now = clock_.Now();
  const Rules& rules = *rules_;
  const Millis grace = rules.misfire_grace.Exact();
  RunStats stats;
  std::vector<FiringOutcome> outcomes;
  for (std::size_t batch = 0;; ++batch) {
    if (batch == max_batches) {
      stats.more = true;
      break;
    }
    auto due = store_.TakeDue(now, kBatchSize);
    if (!due.ok()) return due.status();
    if (due->empty()) break;
    outcomes.clear();
    outcomes.reserve(due->size());
    // Fires decided in this batch, not yet visible through CountFired().
    std::map<std::pair<std::string_view, Instant>, int> batch_fires;
    for (const DueTouchpoint& d : *due) {
      const TouchpointView& t = d.view;
      const Millis late = now - t.next_at;
      if (late > grace) {
        outcomes.push_back({FiringOutcome::Kind::kSkipped, now, MissedReason(late, rules)});
        ++stats.skipped;
        continue;
      }
      if (!rules.send_window.Contains(LocalTimeOfDay(now, t.zone))) {
        outcomes.push_back({FiringOutcome::Kind::kDeferred,
                            NextOpening(now, rules.send_window, t.zone),
                            "late, outside the send window"});
        ++stats.deferred;
        continue;
      }
      if (rules.frequency_cap) {
        const Instant day = StartOfLocalDay(now, t.zone);
        auto fired = store_.CountFired(d, day, StartOfNextLocalDay(now, t.zone));
        if (!fired.ok()) return fired.status();
        int& in_batch = batch_fires[{t.buyer_id, day}];
        if (*fired + in_batch >= *rules.frequency_cap) {
          outcomes.push_back({FiringOutcome::Kind::kDeferred,
                              NextDayOpening(now, rules.send_window, t.zone),
                              "frequency cap reached for the buyer's day"});
          ++stats.deferred;
          continue;
        }
        ++in_batch;
      }
      outcomes.push_back({FiringOutcome::Kind::kFired, now, {}});
      ++stats.fired;
    }
    if (Status s = store_.ApplyOutcomes(*due, outcomes); !s.ok()) return s;
    if (observer_ != nullptr) {
      for (std::size_t i = 0; i < due->size(); ++i) {
        const TouchpointView& t = (*due)[i].view;
        switch (outcomes[i].kind) {
          case FiringOutcome::Kind::kFired:
            observer_->OnFired(t.cadence, now - std::max(t.next_at, t.ready_at));
            break;
          case FiringOutcome::Kind::kDeferred:
            observer_->OnDeferred(t.cadence);
            break;
          case FiringOutcome::Kind::kSkipped:
            observer_->OnTouchpoints(t.cadence, TouchpointState::kSkipped, 1);
            break;
        }
      }
    }
  }
  return stats;
}

}  // namespace tp
