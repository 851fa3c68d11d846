#include "store/queued_before.h"

#include <algorithm>

namespace tp {

bool QueuedBefore::Step(std::int64_t after, std::int64_t cutoff,
                        const std::function<std::int64_t()>& last_message, const ReadRange& read) {
  // A pass begins at row 0; one left unfinished (an error) begins again.
  if (after == 0 && whole_) Done();
  if (!cutoff_) {
    cutoff_ = cutoff;
    read_end_ = last_message();
  }
  if (whole_) return true;
  read_to_ = std::max(read(read_to_, read_end_, *cutoff_, touchpoints_), read_to_ + 1);
  if (read_to_ < read_end_) return false;
  std::sort(touchpoints_.begin(), touchpoints_.end());
  touchpoints_.erase(std::unique(touchpoints_.begin(), touchpoints_.end()), touchpoints_.end());
  whole_ = true;
  return true;
}

std::span<const std::int64_t> QueuedBefore::Between(std::int64_t after, std::int64_t to) const {
  const auto first = std::upper_bound(touchpoints_.begin(), touchpoints_.end(), after);
  const auto last = std::upper_bound(first, touchpoints_.end(), to);
  return {first, last};
}

}  // namespace tp
