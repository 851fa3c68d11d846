#include "delivery/circuit.h"

#include <algorithm>

namespace tp {

std::size_t Circuit::Slots(Instant now, std::size_t in_flight, std::size_t limit) {
  if (state_ == State::kOpen && now >= open_until_) state_ = State::kHalfOpen;
  if (state_ == State::kOpen) return 0;
  if (state_ == State::kHalfOpen) return in_flight == 0 ? 1 : 0;
  return in_flight < limit ? limit - in_flight : 0;
}

std::string Circuit::Succeeded() {
  const bool changed = state_ != State::kClosed;
  standby_ = false;
  state_ = State::kClosed;
  failures_ = 0;
  open_for_ = Millis(0);
  last_error_.clear();
  return changed ? "recovered; delivering again" : "";
}

std::string Circuit::Failed(Instant now, const std::string& error) {
  ++failures_;
  last_error_ = error;
  standby_ = false;
  if (state_ == State::kOpen) return "";
  if (state_ == State::kClosed && failures_ < threshold_) return "";
  open_for_ = open_for_.count() == 0 ? initial_ : std::min(open_for_ * 2, max_);
  open_until_ = now + open_for_;
  state_ = State::kOpen;
  return "failing (" + std::to_string(failures_) + " in a row, last: " + error +
         "); pausing deliveries for " + MsText(open_for_);
}

std::string Circuit::StandBy(bool elsewhere) {
  if (elsewhere == standby_ || state_ == State::kOpen) return "";
  standby_ = elsewhere;
  return elsewhere ? "delivered by another daemon; standing by" : "delivered by this daemon";
}

SinkHealth Circuit::Health(const std::string& name) const {
  static constexpr const char* kNames[] = {"ok", "open", "half-open"};
  return {name, standby_ ? "standby" : kNames[static_cast<int>(state_)], failures_, last_error_,
          !standby_ && state_ != State::kClosed};
}

}  // namespace tp
