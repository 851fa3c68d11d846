// Test support: the brief's rules, and a scheduler over a MemoryStore on a
// FakeClock that records every touchpoint's final state.
#pragma once

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brief_config.h"
#include "config/loader.h"
#include "core/clock.h"
#include "scheduler/memory_store.h"
#include "scheduler/scheduler.h"

namespace tp::testing {

inline Instant At(std::string_view rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(Instant{});
}

inline std::string Fmt(Instant t, std::string_view zone) {
  return FormatRfc3339(t, FindZone(zone));
}

inline std::shared_ptr<const Rules> MustLoad(std::string_view yaml) {
  LoadResult r = LoadRulesString(yaml, "test.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  return r.rules;
}

// The errors of a config that must not load, as `FILE:LINE:COL: error: ...`.
inline std::vector<std::string> ConfigErrors(std::string_view yaml) {
  LoadResult r = LoadRulesString(yaml, "t.yaml");
  EXPECT_FALSE(r.ok());
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.ToString());
  return out;
}

// A touchpoint's final (or, via Pending(), current) state, owned.
struct Record {
  std::string id, buyer_id, order_id, cadence, topic, tier, product, reason;
  std::string due_at, fire_at;  // RFC 3339 in the buyer's zone; fire_at "" unless fired
  TouchpointState state = TouchpointState::kPending;
};

inline Record ToRecord(const TouchpointView& v) {
  Record r;
  r.id = v.id;
  r.buyer_id = v.buyer_id;
  r.order_id = v.order_id;
  r.cadence = v.cadence;
  r.topic = v.topic;
  r.tier = v.tier;
  r.product = v.product;
  r.reason = v.reason;
  r.due_at = FormatRfc3339(v.due_at, v.zone);
  if (v.fire_at) r.fire_at = FormatRfc3339(*v.fire_at, v.zone);
  r.state = v.state;
  return r;
}

class Harness : public MemoryStore::Observer {
 public:
  Harness(std::string_view yaml, Instant start)
      : rules_(MustLoad(yaml)),
        clock_(start),
        in_force_(rules_),
        store_(rules_, this),
        scheduler_(store_, clock_, in_force_) {}

  void OnFinal(const TouchpointView& v) override { finals_.push_back(ToRecord(v)); }

  FakeClock& clock() { return clock_; }
  Scheduler& scheduler() { return scheduler_; }
  MemoryStore& store() { return store_; }
  const std::vector<Record>& finals() const { return finals_; }

  // Ingests at the current virtual time.
  IngestOutcome Ingest(const std::string& order, const std::string& buyer,
                       const std::string& product, std::int64_t quantity, double amount,
                       std::string_view purchased_at, const std::string& zone = "") {
    Purchase p{order, buyer, product, quantity, amount, At(purchased_at), zone};
    auto r = scheduler_.Ingest(p);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : IngestOutcome{};
  }

  // Runs the clock up to the purchase time, then ingests (as simulate does).
  IngestOutcome Buy(const std::string& order, const std::string& buyer, const std::string& product,
                    std::int64_t quantity, double amount, std::string_view purchased_at,
                    const std::string& zone = "") {
    RunUntil(purchased_at);
    return Ingest(order, buyer, product, quantity, amount, purchased_at, zone);
  }

  // Runs the clock up to the event's time, then records it (as simulate
  // does with its events).
  EventOutcome Event(const std::string& event_id, const std::string& buyer, const std::string& type,
                     std::string_view at, const std::string& touchpoint_id = "") {
    RunUntil(at);
    EngagementEvent e{event_id, buyer, type, At(at), touchpoint_id};
    auto r = scheduler_.RecordEvent(e);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : EventOutcome{};
  }

  // Advances the virtual clock through every wake-up up to `until`.
  void RunUntil(Instant until) {
    for (;;) {
      auto next = scheduler_.NextWakeup();
      ASSERT_TRUE(next.ok());
      if (!*next || **next > until) break;
      clock_.Set(**next);
      ASSERT_TRUE(scheduler_.RunDue().ok());
    }
    if (clock_.Now() < until) clock_.Set(until);
  }
  void RunUntil(std::string_view rfc3339) { RunUntil(At(rfc3339)); }
  void RunAll() { RunUntil(Instant(Millis(std::numeric_limits<std::int64_t>::max() / 2))); }

  std::vector<Record> Pending() const {
    std::vector<Record> out;
    store_.ForEachPending([&](const TouchpointView& v) { out.push_back(ToRecord(v)); });
    return out;
  }
  // Fired topics of a buyer, in fire order.
  std::vector<std::string> FiredTopics(const std::string& buyer) const {
    std::vector<std::string> out;
    for (const auto& r : finals_) {
      if (r.buyer_id == buyer && r.state == TouchpointState::kFired) out.push_back(r.topic);
    }
    return out;
  }
  // The record for (order, topic) among finals, then pending; nullptr if none.
  std::optional<Record> Find(const std::string& order, const std::string& topic) const {
    for (const auto& r : finals_) {
      if (r.order_id == order && r.topic == topic) return r;
    }
    for (const auto& r : Pending()) {
      if (r.order_id == order && r.topic == topic) return r;
    }
    return std::nullopt;
  }

 private:
  std::shared_ptr<const Rules> rules_;
  FakeClock clock_;
  RulesInForce in_force_;
  MemoryStore store_;
  Scheduler scheduler_;
  std::vector<Record> finals_;
};

}  // namespace tp::testing
