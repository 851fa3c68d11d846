#include "scheduler/scheduler.h"

#include <algorithm>
#include <map>
#include <utility>

#include "planner/event_check.h"
#include "planner/planner.h"
#include "planner/purchase_check.h"
#include "planner/window.h"
#include "scheduler/frequency_caps.h"

namespace tp {
namespace {

// Whether `t` fired within `window` before `at` (calendar days in its zone):
// what an event or a repurchase at `at` is credited to (docs/outcomes.md).
bool FiredWithin(const TouchpointRef& t, Duration window, Instant at) {
  window.count = -window.count;
  return t.fire_at && *t.fire_at >= AddDuration(at, window, t.zone);
}

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
  auto events = StopEvents(purchase);
  if (!events.ok()) return events.status();
  Plan plan = PlanPurchase(*rules_, buyer->history, purchase, product, zone, *events);
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
  if (Status s = ObserveRepurchase(purchase, buyer->history, zone); !s.ok()) return s;
  return outcome;
}

StatusOr<std::vector<BuyerEvent>> Scheduler::StopEvents(const Purchase& purchase) {
  const Rules& rules = *rules_;
  if (stop_types_of_ != rules_.generation()) {
    stop_types_ = StopTypes(rules);
    stop_types_of_ = rules_.generation();
  }
  std::vector<BuyerEvent> events;
  if (stop_types_.empty()) return events;
  auto first = store_.FirstEventsSince(purchase.buyer_id, purchase.purchased_at, stop_types_);
  if (!first.ok()) return first.status();
  for (const EngagementEvent& e : *first) {
    if (const int type = rules.EngagementTypeIndex(e.type); type >= 0) {
      events.push_back({e.at, type});
    }
  }
  return events;
}

Status Scheduler::ObserveRepurchase(const Purchase& purchase, std::span<const PastPurchase> history,
                                    const Zone* zone) {
  if (observer_ == nullptr) return Status::Ok();
  // The buyer's purchase just before this one (ties: the one recorded
  // first).
  const PastPurchase* previous = nullptr;
  for (const PastPurchase& p : history) {
    if (p.purchased_at < purchase.purchased_at &&
        (previous == nullptr || p.purchased_at > previous->purchased_at)) {
      previous = &p;
    }
  }
  if (previous == nullptr) return Status::Ok();
  const Rules& rules = *rules_;
  bool in_window = false;
  if (previous->product >= 0) {
    const Zone* previous_zone = previous->zone != nullptr ? previous->zone : zone;
    const Instant runout =
        Runout(previous->purchased_at, previous->quantity,
               rules.products[static_cast<std::size_t>(previous->product)], previous_zone);
    in_window = purchase.purchased_at <=
                AddDuration(runout, rules.outcomes.repurchase_grace, previous_zone);
  }
  auto last = store_.LastFiredBefore(purchase.buyer_id, purchase.purchased_at);
  if (!last.ok()) return last.status();
  const std::optional<TouchpointRef>& t = last->touchpoint;
  std::string_view cadence;
  if (t && FiredWithin(*t, rules.outcomes.attribution_window, purchase.purchased_at)) {
    cadence = t->cadence;
  }
  observer_->OnRepurchase(in_window, cadence);
  return Status::Ok();
}

StatusOr<EventOutcome> Scheduler::AsRecorded(const EngagementEvent& event,
                                             EventOutcome::Kind if_new) {
  auto match = store_.MatchEvent(event);
  if (!match.ok()) return match.status();
  EventOutcome outcome{if_new};
  if (match->kind == EventMatch::Kind::kSame) outcome.kind = EventOutcome::Kind::kDuplicate;
  if (match->kind == EventMatch::Kind::kConflict) {
    outcome.kind = EventOutcome::Kind::kConflict;
    outcome.conflict_field = std::move(match->field);
  }
  return outcome;
}

StatusOr<EventOutcome> Scheduler::RecordEvent(const EngagementEvent& event) {
  const Rules& rules = *rules_;
  if (auto problem = CheckEvent(event, rules)) return Status::Error(problem->message);
  // Credit (docs/outcomes.md): the touchpoint it names, else the last one
  // fired to the buyer within the attribution window before it (calendar
  // days in that touchpoint's zone).
  auto found = event.touchpoint_id.empty()
                   ? store_.LastFiredBefore(event.buyer_id, event.at)
                   : store_.FindTouchpoint(event.buyer_id, event.touchpoint_id);
  if (!found.ok()) return found.status();
  std::optional<TouchpointRef>& credited = found->touchpoint;
  if (!event.touchpoint_id.empty() && !credited) {
    // A retry of an event recorded before its touchpoint was pruned by
    // retention is still a duplicate.
    return AsRecorded(event, EventOutcome::Kind::kUnknownTouchpoint);
  }
  if (event.touchpoint_id.empty() && credited &&
      !FiredWithin(*credited, rules.outcomes.attribution_window, event.at)) {
    credited.reset();
  }
  const Instant now = clock_.Now();
  auto added = store_.AddEvent(event, found->buyer, credited ? credited->handle : 0, now);
  if (!added.ok()) return added.status();
  // Its event_id is recorded already: nothing was written. (Were it gone
  // meanwhile, a conflict that cannot name its field is the safe answer.)
  if (!*added) return AsRecorded(event, EventOutcome::Kind::kConflict);
  if (credited && observer_ != nullptr) observer_->OnEngaged(credited->cadence);

  EventOutcome outcome;
  outcome.credited = credited ? credited->handle : 0;
  const int type = rules.EngagementTypeIndex(event.type);
  std::vector<std::string> stopped;
  for (const Cadence& c : rules.cadences) {
    if (std::find(c.stop_on.begin(), c.stop_on.end(), type) != c.stop_on.end()) {
      stopped.push_back(c.name);
    }
  }
  if (!stopped.empty()) {
    auto cancelled = store_.CancelCadences(event.buyer_id, stopped, event.at, now,
                                           StoppedReason(event.type, event.at));
    if (!cancelled.ok()) return cancelled.status();
    for (const auto& [cadence, n] : *cancelled) outcome.cancelled += static_cast<int>(n);
    Report(*cancelled, TouchpointState::kCancelled);
  }
  return outcome;
}

StatusOr<std::optional<std::string>> Scheduler::UnmetWhen(const DueTouchpoint& due, Instant now) {
  const Rules& rules = *rules_;
  const int c = rules.CadenceIndex(due.view.cadence);
  if (c < 0) return std::optional<std::string>();
  const Cadence& cadence = rules.cadences[static_cast<std::size_t>(c)];
  auto step = std::find_if(cadence.steps.begin(), cadence.steps.end(),
                           [&](const Step& s) { return s.id == due.view.step; });
  // A step the rules no longer have fires as planned until the re-plan
  // reaches it.
  if (step == cadence.steps.end() || step->when == When::kAlways) {
    return std::optional<std::string>();
  }
  std::vector<std::string> trust;
  std::string named;
  for (const EngagementType& t : rules.engagement_types) {
    if (!t.trust) continue;
    named += (named.empty() ? "" : " or ") + t.name;
    trust.push_back(t.name);
  }
  auto first = store_.FirstEngagement(due, trust, now);
  if (!first.ok()) return first.status();
  if (step->when == When::kEngaged && !first->has_value()) {
    return std::optional<std::string>("when: engaged, and the buyer has not " + named +
                                      " since the purchase");
  }
  if (step->when == When::kNotEngaged && first->has_value()) {
    return std::optional<std::string>("when: not_engaged, and the buyer " + (*first)->type +
                                      " at " + FormatRfc3339((*first)->at, due.view.zone));
  }
  return std::optional<std::string>();
}

void Scheduler::Report(const CadenceCounts& counts, TouchpointState state) {
  if (observer_ == nullptr) return;
  for (const auto& [cadence, n] : counts) observer_->OnTouchpoints(cadence, state, n);
}

StatusOr<std::int64_t> Scheduler::OptOut(std::string_view buyer_id) {
  auto suppressed = store_.SetOptedOut(buyer_id, true, clock_.Now());
  if (!suppressed.ok()) return suppressed.status();
  Report(*suppressed, TouchpointState::kSuppressed);
  std::int64_t total = 0;
  for (const auto& [cadence, n] : *suppressed) total += n;
  return total;
}

Status Scheduler::OptIn(std::string_view buyer_id) {
  return store_.SetOptedOut(buyer_id, false, clock_.Now()).status();
}

StatusOr<RunStats> Scheduler::RunDue(std::size_t max_batches) {
  const Instant now = clock_.Now();
  const Rules& rules = *rules_;
  const Millis grace = rules.misfire_grace.Exact();
  const bool any_when =
      std::any_of(rules.cadences.begin(), rules.cadences.end(), [](const auto& c) {
        return std::any_of(c.steps.begin(), c.steps.end(),
                           [](const Step& s) { return s.when != When::kAlways; });
      });
  RunStats stats;
  std::vector<FiringOutcome> outcomes;
  CapLedger caps(rules, store_, now);
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
    caps.NewBatch();
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
      if (!caps.empty()) {
        auto full = caps.Check(d);
        if (!full.ok()) return full.status();
        if (full->has_value()) {
          // Again and again, a day at a time, until every cap allows it.
          outcomes.push_back({FiringOutcome::Kind::kDeferred,
                              NextDayOpening(now, rules.send_window, t.zone), std::move(**full),
                              true});
          ++stats.deferred;
          continue;
        }
      }
      if (any_when) {
        auto unmet = UnmetWhen(d, now);
        if (!unmet.ok()) return unmet.status();
        if (unmet->has_value()) {
          outcomes.push_back({FiringOutcome::Kind::kSkipped, now, std::move(**unmet)});
          ++stats.skipped;
          continue;
        }
      }
      if (!caps.empty()) caps.Count(d);
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
