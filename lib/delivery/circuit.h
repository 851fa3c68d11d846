// A push sink's circuit (delivery/dispatcher.cc): it opens after
// failures in a row, backs off (doubling up to a limit) and lets one probe
// through once its delay is over. Internal to lib/delivery.
#pragma once

#include <cstdint>
#include <string>

#include "core/time.h"
#include "delivery/dispatcher.h"

namespace tp {

class Circuit {
 public:
  // Opens after `threshold` failures in a row, for `initial`, then twice as
  // long at each failed probe, up to `max`.
  Circuit(int threshold, Millis initial, Millis max)
      : threshold_(threshold), initial_(initial), max_(max) {}

  // How many attempts may start now, given `in_flight` and `limit`.
  std::size_t Slots(Instant now, std::size_t in_flight, std::size_t limit);
  bool open() const { return state_ == State::kOpen; }
  Instant open_until() const { return open_until_; }

  // Each returns a line to log when the state changed, else "".
  std::string Succeeded();
  std::string Failed(Instant now, const std::string& error);
  // Whether another daemon sharing the store delivers the sink (a stream,
  // whose lock it holds): this daemon stands by, shown as such and not as
  // failing, and its state under that (closed, or half-open with its
  // back-off kept) is shown again once it delivers the sink itself.
  std::string StandBy(bool elsewhere);

  SinkHealth Health(const std::string& name) const;

 private:
  enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen };
  const int threshold_;
  const Millis initial_, max_;
  State state_ = State::kClosed;
  int failures_ = 0;
  Millis open_for_{0};
  Instant open_until_;
  std::string last_error_;
  bool standby_ = false;  // never while open: a failure ends it
};

// "250 ms": a duration in the delivery log's lines and history.
inline std::string MsText(Millis ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace tp
