#include "daemon/observer_log.h"

#include <utility>

namespace tp {

void ObserverLog::OnTouchpoints(std::string_view cadence, TouchpointState state,
                                std::int64_t count) {
  seen_.push_back({Seen::Kind::kTouchpoints, std::string(cadence), state, count});
}

void ObserverLog::OnDeferred(std::string_view cadence) {
  seen_.push_back({Seen::Kind::kDeferred, std::string(cadence)});
}

void ObserverLog::OnFired(std::string_view cadence, Millis late) {
  seen_.push_back({Seen::Kind::kFired, std::string(cadence), {}, 0, late});
}

void ObserverLog::OnEngaged(std::string_view cadence) {
  seen_.push_back({Seen::Kind::kEngaged, std::string(cadence)});
}

void ObserverLog::OnRepurchase(bool in_window, std::string_view credited_cadence) {
  seen_.push_back(
      {Seen::Kind::kRepurchase, std::string(credited_cadence), {}, 0, Millis(0), in_window});
}

std::vector<ObserverLog::Seen> ObserverLog::Take() { return std::exchange(seen_, {}); }

void ObserverLog::Tell(const std::vector<Seen>& seen, SchedulerObserver& observer) {
  for (const Seen& s : seen) {
    switch (s.kind) {
      case Seen::Kind::kTouchpoints:
        observer.OnTouchpoints(s.cadence, s.state, s.count);
        break;
      case Seen::Kind::kDeferred:
        observer.OnDeferred(s.cadence);
        break;
      case Seen::Kind::kFired:
        observer.OnFired(s.cadence, s.late);
        break;
      case Seen::Kind::kEngaged:
        observer.OnEngaged(s.cadence);
        break;
      case Seen::Kind::kRepurchase:
        observer.OnRepurchase(s.in_window, s.cadence);
        break;
    }
  }
}

}  // namespace tp
