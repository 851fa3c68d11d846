#include "store/pg/gauges.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>
#include <string_view>

namespace tp::pgstore {
namespace {

// Each count is of the rows of a bounded subquery ($N: the bound + 1, so
// that reaching the bound shows); each estimate is the row count of the
// plan of the same rows, unbounded (EXPLAIN plans, it does not run).
const pg::Statement kPendingUpTo(
    "SELECT COUNT(*) FROM (SELECT 1 FROM touchpoints WHERE state = 0 LIMIT $1) s");
const pg::Statement kPendingPlan("EXPLAIN SELECT 1 FROM touchpoints WHERE state = 0",
                                 pg::Statement::Plan::kEachRun);
const pg::Statement kQueueUpTo(
    "SELECT COUNT(*) FROM (SELECT 1 FROM queue_messages WHERE queue = $1 LIMIT $2) s");
const pg::Statement kQueuePlan("EXPLAIN SELECT 1 FROM queue_messages WHERE queue = $1",
                               pg::Statement::Plan::kEachRun);
const pg::Statement kDeadLettersUpTo(
    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE sink = $1 AND state = 1 LIMIT $2) s");
const pg::Statement kDeadLettersPlan(
    "EXPLAIN SELECT 1 FROM deliveries WHERE sink = $1 AND state = 1",
    pg::Statement::Plan::kEachRun);
// As kSinksWithDeliveries (store/gauges.h).
const pg::Statement kSinksWithDeliveries(
    "WITH RECURSIVE s(sink) AS (SELECT min(sink) FROM deliveries "
    "UNION ALL SELECT (SELECT min(sink) FROM deliveries WHERE sink > s.sink) "
    "FROM s WHERE s.sink IS NOT NULL) "
    "SELECT sink FROM s WHERE sink IS NOT NULL LIMIT 1000");
const pg::Statement kOutboxUpTo(
    "SELECT sink, COUNT(*) FROM (SELECT sink FROM deliveries WHERE state = 0 LIMIT $1) s "
    "GROUP BY sink ORDER BY sink");
const pg::Statement kOutboxPlan("EXPLAIN SELECT 1 FROM deliveries WHERE sink = $1 AND state = 0",
                                pg::Statement::Plan::kEachRun);

// The rows the plan's top node expects: "... (cost=0.42..8.44 rows=12345
// width=4)" on its first line.
std::int64_t PlannedRows(const pg::Result& plan) {
  if (plan.rows() > 0) {
    const std::string_view top = plan.Text(0, 0);
    const std::size_t at = top.find(" rows=");
    if (at != std::string_view::npos) {
      const char* first = top.data() + at + 6;
      std::int64_t rows = 0;
      if (std::from_chars(first, top.data() + top.size(), rows).ec == std::errc()) return rows;
    }
  }
  throw std::runtime_error("no row estimate in the plan");
}

class Counter {
 public:
  Counter(pg::Connection& c, std::int64_t exact_up_to, bool& estimated)
      : c_(c), up_to_(exact_up_to), estimated_(estimated) {}

  // Exact up to the bound, else the plan's estimate (at least the bound
  // and one: that many rows were there).
  std::int64_t Count(const pg::Statement& up_to, const pg::Statement& plan,
                     const std::string* key = nullptr) {
    pg::Params bounded;
    if (key != nullptr) bounded.Add(*key);
    bounded.Add(up_to_ + 1);
    const std::int64_t n = c_.Run(up_to, bounded).Int64(0, 0);
    if (n <= up_to_) return n;
    return Estimate(plan, key);
  }
  std::int64_t Estimate(const pg::Statement& plan, const std::string* key) {
    estimated_ = true;
    pg::Params params;
    if (key != nullptr) params.Add(*key);
    return std::max(PlannedRows(c_.Run(plan, params)), up_to_ + 1);
  }

 private:
  pg::Connection& c_;
  std::int64_t up_to_;
  bool& estimated_;
};

}  // namespace

StoreGauges ReadGauges(pg::Connection& c, std::span<const std::string> queues,
                       std::span<const std::string> push_sinks, std::int64_t exact_up_to) {
  pg::Transaction read(c, pg::Transaction::Mode::kSnapshot);
  StoreGauges g;
  Counter counter(c, exact_up_to, g.estimated);
  g.pending = counter.Count(kPendingUpTo, kPendingPlan);
  for (const std::string& q : queues) {
    g.queue_messages.emplace_back(q, counter.Count(kQueueUpTo, kQueuePlan, &q));
  }
  for (const std::string& s : push_sinks) {
    g.dead_letters.emplace_back(s, counter.Count(kDeadLettersUpTo, kDeadLettersPlan, &s));
  }
  // A sink a reload removed keeps its dead letters: counted while any wait.
  pg::Result with_deliveries = c.Run(kSinksWithDeliveries);
  for (int i = 0; i < with_deliveries.rows(); ++i) {
    const std::string sink(with_deliveries.Text(i, 0));
    if (std::find(push_sinks.begin(), push_sinks.end(), sink) != push_sinks.end()) continue;
    if (std::int64_t dead = counter.Count(kDeadLettersUpTo, kDeadLettersPlan, &sink); dead > 0)
      g.dead_letters.emplace_back(sink, dead);
  }
  // The outbox by sink: exact while it holds no more than the bound in
  // all; past it, an estimate for each sink seen among those rows and each
  // push sink asked for.
  pg::Result r = c.Run(kOutboxUpTo, pg::Params().Add(exact_up_to + 1));
  std::int64_t total = 0;
  for (int i = 0; i < r.rows(); ++i) total += r.Int64(i, 1);
  if (total <= exact_up_to) {
    for (int i = 0; i < r.rows(); ++i)
      g.outbox.emplace_back(std::string(r.Text(i, 0)), r.Int64(i, 1));
  } else {
    std::set<std::string> sinks(push_sinks.begin(), push_sinks.end());
    for (int i = 0; i < r.rows(); ++i) sinks.emplace(r.Text(i, 0));
    g.estimated = true;
    for (const std::string& s : sinks) {
      g.outbox.emplace_back(s, PlannedRows(c.Run(kOutboxPlan, pg::Params().Add(s))));
    }
  }
  read.Commit();
  return g;
}

}  // namespace tp::pgstore
