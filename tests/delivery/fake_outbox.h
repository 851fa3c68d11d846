// An OutboxStore as a vector, for in-process tests of what uses one (the
// dispatcher, the dead-letter routes): what they record is kept for the
// test to read.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/outbox_store.h"

namespace tp::testing {

class FakeOutbox final : public OutboxStore {
 public:
  struct Entry {
    OutboxItem item;
    std::string sink;
    Instant next;
    bool dead = false;
    Instant dead_at{};
    std::string last_error;
  };

  // With the event {"n":ID}, or `event`.
  void Add(std::int64_t id, const std::string& sink, Instant due, std::string event = "") {
    if (event.empty()) event = R"({"n":)" + std::to_string(id) + "}";
    entries_.push_back(
        {{id, id, "tp-" + std::to_string(id), std::move(event), 0}, sink, due, false, {}, ""});
  }
  const Entry* Find(std::int64_t id) const {
    for (const Entry& e : entries_) {
      if (e.item.id == id) return &e;
    }
    return nullptr;
  }
  // Dead, as a dispatcher would have left it after `attempts`, at `at`.
  void Kill(std::int64_t id, int attempts, std::string error, Instant at = {}) {
    for (Entry& e : entries_) {
      if (e.item.id != id) continue;
      e.dead = true;
      e.dead_at = at;
      e.item.attempts = attempts;
      e.last_error = std::move(error);
    }
  }
  const std::vector<std::string>& history(std::int64_t touchpoint) { return history_[touchpoint]; }
  int recorded() const { return recorded_; }

  StatusOr<std::vector<OutboxItem>> DueDeliveries(
      std::string_view sink, Instant now, std::size_t max, bool in_order,
      std::span<const std::int64_t> attempting = {}) override {
    if (!due_fail.ok()) return due_fail;
    std::vector<const Entry*> due;
    if (in_order && elsewhere.contains(std::string(sink))) return std::vector<OutboxItem>();
    for (const Entry& e : entries_) {
      const bool busy = !in_order && std::find(attempting.begin(), attempting.end(), e.item.id) !=
                                         attempting.end();
      if (e.sink == sink && !e.dead && e.next <= now && !busy) due.push_back(&e);
    }
    std::sort(due.begin(), due.end(), [&](const Entry* a, const Entry* b) {
      return in_order ? a->item.id < b->item.id
                      : std::pair(a->next, a->item.id) < std::pair(b->next, b->item.id);
    });
    std::vector<OutboxItem> out;
    for (const Entry* e : due) {
      if (out.size() == max) break;
      out.push_back(e->item);
    }
    return out;
  }
  Status LetGoOfSink(std::string_view sink) override {
    let_go.emplace_back(sink);
    if (let_go_failures == 0) return Status::Ok();
    --let_go_failures;
    return let_go_error;
  }
  bool DeliveredElsewhere(std::string_view sink) const override {
    return elsewhere.contains(std::string(sink));
  }
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now) override {
    std::optional<Instant> next;
    for (const Entry& e : entries_) {
      if (e.sink == sink && !e.dead && e.next > now && (!next || e.next < *next)) next = e.next;
    }
    return next;
  }
  Status RecordDeliveries(std::span<const DeliveryResult> results) override {
    ++record_calls;
    if (!record_fail.ok()) return record_fail;
    // All or nothing, as a transaction: a result it refuses refuses the call.
    for (const DeliveryResult& r : results) {
      if (r.id == refuse) return Status::Error("delivery " + std::to_string(r.id) + " refused");
    }
    for (const DeliveryResult& r : results) {
      auto it = std::find_if(entries_.begin(), entries_.end(),
                             [&](const Entry& e) { return e.item.id == r.id && !e.dead; });
      if (it == entries_.end()) continue;
      ++recorded_;
      history_[r.touchpoint].push_back(r.history);
      switch (r.kind) {
        case DeliveryResult::Kind::kDelivered:
          entries_.erase(it);
          break;
        case DeliveryResult::Kind::kRetry:
          it->item.attempts = r.attempts;
          it->next = r.next_attempt_at;
          it->last_error = r.error;
          break;
        case DeliveryResult::Kind::kDead:
          it->item.attempts = r.attempts;
          it->dead = true;
          it->last_error = r.error;
          break;
      }
    }
    return Status::Ok();
  }
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit) override {
    if (!fail.ok()) return fail;
    std::vector<DeadLetter> out;
    for (const Entry& e : entries_) {
      if (!e.dead || e.item.id <= after || (!sink.empty() && e.sink != sink)) continue;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back({e.item.id, e.sink, e.item.touchpoint_id, e.item.event, e.item.attempts,
                     e.last_error, e.next});
    }
    return out;
  }
  StatusOr<ReplayedOne> ReplayDeadLetter(std::int64_t id, Instant now) override {
    if (!fail.ok()) return fail;
    auto e = std::find_if(entries_.begin(), entries_.end(),
                          [&](const Entry& x) { return x.item.id == id; });
    if (e == entries_.end()) return ReplayedOne::kUnknown;
    if (!e->dead) return ReplayedOne::kWaiting;
    e->dead = false;
    e->item.attempts = 0;
    e->next = now;
    return ReplayedOne::kReplayed;
  }
  StatusOr<ReplayedStep> ReplayDeadLettersAfter(std::string_view sink, std::int64_t after,
                                                Instant dead_by, int limit, Instant now) override {
    if (!fail.ok()) return fail;
    ++replay_steps;
    if (replay_steps == fail_step) return Status::Unavailable("the database is away");
    std::vector<Entry*> picked;  // by id, as the stores read them
    for (Entry& e : entries_) {
      if (!e.dead || e.item.id <= after || (!sink.empty() && e.sink != sink)) continue;
      if (e.dead_at > dead_by) continue;
      picked.push_back(&e);
    }
    std::sort(picked.begin(), picked.end(),
              [](const Entry* a, const Entry* b) { return a->item.id < b->item.id; });
    if (static_cast<int>(picked.size()) > limit) picked.resize(static_cast<std::size_t>(limit));
    ReplayedStep step;
    for (Entry* e : picked) {
      e->dead = false;
      e->item.attempts = 0;
      e->next = now;
      ++step.replayed;
      step.last_id = e->item.id;
    }
    return step;
  }
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink(
      std::int64_t limit) override {
    std::map<std::string, std::int64_t> by;
    for (const Entry& e : entries_) {
      if (!e.dead && by[e.sink] < limit) ++by[e.sink];
    }
    return std::vector<std::pair<std::string, std::int64_t>>(by.begin(), by.end());
  }
  StatusOr<std::int64_t> OutboxDepth(std::string_view sink) override {
    return static_cast<std::int64_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [&](const Entry& e) { return e.sink == sink && !e.dead; }));
  }
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink) override {
    return static_cast<std::int64_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [&](const Entry& e) { return e.sink == sink && e.dead; }));
  }

  // ReplayDeadLettersAfter() calls so far, and the one that fails as a
  // store away (0: none).
  int replay_steps = 0;
  int fail_step = 0;
  // Not ok: what DeadLetters() and ReplayDeadLetter() return.
  Status fail = Status::Ok();
  // Not ok: what DueDeliveries() returns.
  Status due_fail = Status::Ok();
  // A delivery whose results RecordDeliveries() refuses (not as a store
  // that is away: as one that cannot take that row), or 0.
  std::int64_t refuse = 0;
  // Not ok: what RecordDeliveries() returns; and how often it was called.
  Status record_fail = Status::Ok();
  int record_calls = 0;
  // The sinks LetGoOfSink() was called for, in turn.
  std::vector<std::string> let_go;
  // How many of the next LetGoOfSink() calls fail, and how.
  int let_go_failures = 0;
  Status let_go_error = Status::Unavailable("the database is away");
  // In-order sinks another daemon delivers: nothing due for this one.
  std::set<std::string> elsewhere;

 private:
  std::vector<Entry> entries_;
  std::map<std::int64_t, std::vector<std::string>> history_;
  int recorded_ = 0;
};

}  // namespace tp::testing
