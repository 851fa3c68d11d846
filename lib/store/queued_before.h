// Which touchpoints still have a queue message enqueued before a retention
// pass's cutoff, for both stores' retention: read once a pass, kRange
// messages a step, so that no step holds the daemon's loop long however
// many messages wait (neither store keeps an index on the messages'
// touchpoints: a lease would write it), by a number of messages, not of
// ids, so that a read costs the messages there are, not every id ever
// given (acked messages leave gaps). A message is enqueued when its
// touchpoint fires, at its fire time, so none is added for a touchpoint
// fired before the cutoff once the pass has begun: the list only errs by
// keeping one whose message was acked since. A pass prunes by the earlier
// of its cutoff and the one the list was read with (cutoff()).
//
// Not thread-safe: the store's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace tp {

class QueuedBefore {
 public:
  static constexpr std::int64_t kRange = 100'000;
  // The touchpoints of the next kRange messages after id `from`, up to id
  // `end`, enqueued before `cutoff`, appended to `out`; returns the id read
  // up to (the kRange-th message's, or `end` if fewer are left).
  using ReadRange = std::function<std::int64_t(
      std::int64_t from, std::int64_t end, std::int64_t cutoff, std::vector<std::int64_t>& out)>;

  // At a step of a pass (`after`: the first touchpoint row of the step, 0
  // at a pass's start): reads one more range if the list is not whole yet
  // (`last_message`: the highest message id now, asked as a pass begins).
  // True once the list is whole: the step may prune.
  bool Step(std::int64_t after, std::int64_t cutoff,
            const std::function<std::int64_t()>& last_message, const ReadRange& read);
  // The cutoff the list was read with (after a Step()).
  std::int64_t cutoff() const { return cutoff_.value_or(0); }
  // The queued touchpoints in (after, to], sorted (once whole).
  std::span<const std::int64_t> Between(std::int64_t after, std::int64_t to) const;
  // The pass is over: the list goes (a backlog's is not kept meanwhile).
  void Done() { *this = {}; }

 private:
  std::optional<std::int64_t> cutoff_;  // read with; none before a pass
  std::int64_t read_to_ = 0;            // message ids read so far
  std::int64_t read_end_ = 0;           // the last id as the pass began
  bool whole_ = false;                  // read and sorted
  std::vector<std::int64_t> touchpoints_;
};

}  // namespace tp
