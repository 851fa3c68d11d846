#include "store/pg_reader.h"

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "core/job_thread.h"
#include "pg/connection.h"
#include "pg/url.h"
#include "store/outcome_merge.h"
#include "store/pg/gauges.h"
#include "store/pg/queues.h"
#include "store/pg/rows.h"
#include "store/pg/session.h"
#include "store/values.h"

namespace tp {
namespace {

using sql::Ms;

const pg::Statement kPendingBefore(
    "SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at < $1");
const pg::Statement kPendingFrom(
    "SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at >= $1");
const pg::Statement kPendingSpan(
    "SELECT cadence_order, COUNT(*) FROM touchpoints WHERE state = 0 AND next_at >= $1 AND "
    "next_at < $2 GROUP BY cadence_order");

// One ordered scan through a server-side cursor, a batch of rows at a time
// (store/outcome_merge.h's Scan).
class CursorScan {
 public:
  static constexpr std::int64_t kEnd = std::numeric_limits<std::int64_t>::max();
  static constexpr int kBatch = 4096;

  CursorScan(pg::Connection& c, std::string name, const std::string& sql)
      : c_(c), name_(std::move(name)) {
    c_.Exec("DECLARE " + name_ + " NO SCROLL CURSOR FOR " + sql);
    Fetch();
  }
  std::int64_t buyer() const { return row_ < batch_.rows() ? batch_.Int64(row_, 0) : kEnd; }
  void Step() {
    if (++row_ < batch_.rows()) return;
    if (batch_.rows() == kBatch) Fetch();
  }
  std::int64_t Int(int column) const { return batch_.Int64(row_, column); }
  double Real(int column) const { return batch_.Double(row_, column); }
  bool Null(int column) const { return batch_.IsNull(row_, column); }
  std::string_view Text(int column) const { return batch_.Text(row_, column); }

 private:
  void Fetch() {
    batch_ = c_.Exec("FETCH " + std::to_string(kBatch) + " FROM " + name_);
    row_ = 0;
  }
  pg::Connection& c_;
  std::string name_;
  pg::Result batch_;
  int row_ = 0;
};

// `items` as a PostgreSQL array literal, quoted for SQL text.
std::string TextArrayLiteral(const std::vector<std::string>& items) {
  std::string array = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) array += ',';
    array += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') array += '\\';
      array += ch;
    }
    array += '"';
  }
  array += '}';
  std::string quoted = "'";
  for (char ch : array) {
    if (ch == '\'') quoted += '\'';
    quoted += ch;
  }
  return quoted + "'::text[]";
}

// Buyers by row id, [first, end): one range's report from one snapshot.
bool ReadRange(pg::Connection& c, const OutcomeQuery& query, BuyerRange range,
               OutcomeReport& report, const std::atomic<bool>& stop) {
  const bool by_fires =
      query.options.by == ReportBy::kCadence || query.options.by == ReportBy::kTopic;
  const std::string in_range = " buyer >= " + std::to_string(range.first) + " AND buyer < " +
                               std::to_string(range.end) + " ";
  pg::Transaction snapshot(c, pg::Transaction::Mode::kSnapshot);
  CursorScan purchases(c, "purchases_scan",
                       "SELECT buyer, purchased_at, quantity, product, amount, tier, zone, id "
                       "FROM purchases WHERE" +
                           in_range + "ORDER BY buyer, purchased_at, id");
  std::optional<CursorScan> fires;
  if (by_fires) {
    fires.emplace(c, "fires_scan",
                  "SELECT buyer, fire_at, id, cadence, topic, purchase FROM touchpoints WHERE "
                  "state IN (1, 5) AND" +
                      in_range + "ORDER BY buyer, fire_at, id");
  }
  CursorScan events(c, "events_scan",
                    by_fires ? "SELECT buyer, at, 0, credited FROM events WHERE credited IS NOT "
                               "NULL AND" +
                                   in_range + "ORDER BY buyer, at, id"
                             : "SELECT buyer, at, 1, NULL FROM events WHERE type = ANY(" +
                                   TextArrayLiteral(query.trust_types) + ") AND" + in_range +
                                   "ORDER BY buyer, at, id");
  const bool done =
      MergeOutcomes(query, purchases, fires ? &*fires : nullptr, events, report, stop);
  snapshot.Commit();
  return done;
}

}  // namespace

// A connection's settings with the statement timeout of `answer_limit`.
std::string Limits(std::string_view settings, std::chrono::milliseconds answer_limit) {
  std::string out(settings);
  if (answer_limit > std::chrono::seconds(1)) {
    out += (out.empty() ? "" : " ") + std::string("-c statement_timeout=") +
           std::to_string((answer_limit - std::chrono::seconds(1)).count());
  }
  return out;
}

struct PgReader::Impl {
  Impl(std::string database, std::int64_t exact_up_to, std::chrono::milliseconds limit)
      : url(std::move(database)),
        exact_counts_up_to(exact_up_to),
        answer_limit(limit),
        reader_settings(Limits({}, limit)),
        queue_settings(Limits(kQueueSettings, limit)) {}

  // The reader thread's connection, reopened if lost.
  pg::Connection& Conn() {
    return Reopened(conn, conn_pace, "touchpointd-reader", reader_settings, nullptr, true);
  }
  // The days thread's. Opened with the others: a connection opened by the
  // first count made the first /v1/status 100-150 ms slower (a new server
  // process, its caches empty).
  pg::Connection& DaysConn() {
    return Reopened(days_conn, days_pace, "touchpointd-days", {}, &days_cancel);
  }
  // The queues thread's. Its reads go by an index (a lease in the queue's
  // order, its events by id): with statistics taken while the tables were
  // small, the planner read the whole touchpoints table for a lease's
  // events (75 ms against 13; docs/benchmarks.md). A bitmap scan is left
  // on: it reads a lease's events in half the buffers an index scan does.
  pg::Connection& QueueConn() {
    return Reopened(queue_conn, queue_pace, "touchpointd-queues", queue_settings, nullptr, true);
  }
  static constexpr std::string_view kQueueSettings = "-c enable_seqscan=off";

  // The last failed attempt to open a connection: while the server does
  // not answer, a thread tries once a second (as the store's sessions do,
  // store/pg/session.h), and the jobs queued meanwhile fail at once
  // instead of each waiting out a connect timeout of its own.
  struct Pace {
    std::optional<std::chrono::steady_clock::time_point> failed_at;
    std::uint64_t answers = 0;  // Session::Answers() when it failed
    std::string error;
  };

  // A connection reopened if lost; `cancel`, when given, follows it;
  // `limited`: with the answer limit.
  pg::Connection& Reopened(std::unique_ptr<pg::Connection>& c, Pace& pace, const char* name,
                           std::string_view settings = {},
                           std::shared_ptr<pg::Canceller>* cancel = nullptr, bool limited = false) {
    if (!c || !c->ok()) {
      c.reset();
      const auto now = std::chrono::steady_clock::now();
      if (pace.failed_at && now - *pace.failed_at < pgstore::Session::kReconnectPause &&
          pgstore::Session::Answers() == pace.answers) {
        throw pg::Error(pace.error + " (tried again within a second)", "08006", true);
      }
      pace.answers = pgstore::Session::Answers();
      try {
        c = pg::Connection::Open(url, name, settings);
      } catch (const pg::Error& e) {
        pace.failed_at = std::chrono::steady_clock::now();
        pace.error = e.what();
        throw;
      }
      pace.failed_at.reset();
      if (limited) c->set_answer_limit(answer_limit);
      // Without the limit (the days' count: as long as the base makes it),
      // its wait says nothing of the server (the daemon's stall watch).
      if (!limited) c->set_watched(false);
      if (cancel != nullptr) {
        auto made = std::make_shared<pg::Canceller>(*c);
        std::lock_guard lock(cancel_mutex);
        *cancel = std::move(made);
      }
    }
    return *c;
  }
  // Throws once Stop() was called: between the statements of a long read.
  void ThrowIfStopping() const {
    if (stopping) throw pg::Error("the daemon is stopping", "57014", false);
  }

  std::string url;
  std::int64_t exact_counts_up_to;
  std::chrono::milliseconds answer_limit;
  std::string reader_settings, queue_settings;
  std::unique_ptr<pg::Connection> conn;        // the reader thread's
  Pace conn_pace, queue_pace, days_pace;       // each its thread's
  sql::ZoneCache zones;                        // the reader thread's
  std::unique_ptr<pg::Connection> queue_conn;  // the queues thread's
  sql::ZoneCache queue_zones;                  // the queues thread's
  std::unique_ptr<pg::Connection> days_conn;   // the days thread's
  // For Stop(), of the days' connection (replaced on the days thread, read
  // by Stop()'s). Only the days are cancelled: the reader's counts are
  // bounded, and a cancel can land on the statement after the one meant.
  std::mutex cancel_mutex;
  std::shared_ptr<pg::Canceller> days_cancel;
  std::atomic<bool> stopping{false};
  // Declared last, so their threads stop before the rest goes.
  JobThread reader;
  JobThread queues;
  JobThread days;
  JobThread reports;
};

PgReader::PgReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PgReader::~PgReader() { impl_->stopping = true; }

StatusOr<std::unique_ptr<PgReader>> PgReader::Open(const std::string& url,
                                                   std::int64_t exact_counts_up_to,
                                                   std::chrono::milliseconds answer_limit) {
  auto impl = std::make_unique<Impl>(url, exact_counts_up_to, answer_limit);
  try {
    impl->Conn();
    impl->QueueConn();
    impl->DaysConn();
  } catch (const std::exception& e) {
    return pg::ToStatus("cannot open database " + pg::Redacted(url) + " to read it", e);
  }
  return std::unique_ptr<PgReader>(new PgReader(std::move(impl)));
}

void PgReader::Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) {
  impl_->reader.Post([impl = impl_.get(), leased = std::move(leased), queue = std::move(queue),
                      done = std::move(done)]() mutable {
    Status s = pg::Guard("make leased events", [&] {
      pgstore::FillEvents(impl->Conn(), impl->zones, leased, queue);
      return Status::Ok();
    });
    if (!s.ok()) return done(s);
    done(std::move(leased));
  });
}

namespace {

// `asked` (the request's time) moved on by how long its job waited for the
// queues' thread since `queued`: the time the job runs at, on the daemon's
// clock (which may be a test's), read on the loop.
Instant RunsAt(Instant asked, std::chrono::steady_clock::time_point queued) {
  return asked + std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - queued);
}

}  // namespace

void PgReader::Lease(std::string queue, int max, Millis visibility, Instant asked, Filled done) {
  impl_->queues.Post([impl = impl_.get(), queue = std::move(queue), max, visibility, asked,
                      queued = std::chrono::steady_clock::now(), done = std::move(done)] {
    done(pg::Guard("lease", [&]() -> StatusOr<std::vector<LeasedRow>> {
      // Hidden for `visibility` from when it is taken, however long it
      // waited behind other leases and acks: from the request's time,
      // a lease that waited longer than its visibility would be visible
      // again at once, and handed out twice.
      const Instant now = RunsAt(asked, queued);
      pg::Connection& c = impl->QueueConn();
      // An idle consumer's poll: no turn taken, no transaction.
      if (!pgstore::AnyVisible(c, queue, now)) return std::vector<LeasedRow>();
      // A transaction of its own, which ends the queue's turn.
      std::vector<LeasedRow> rows = pgstore::LeaseOn(c, queue, max, visibility, now);
      // Their events, read after the lease's commit in one snapshot of
      // their own (FillEvents).
      pgstore::FillEvents(c, impl->queue_zones, rows, queue);
      return rows;
    }));
  });
}

void PgReader::Ack(std::string queue, std::vector<std::string> receipts, Instant asked,
                   Acked done) {
  impl_->queues.Post([impl = impl_.get(), queue = std::move(queue), receipts = std::move(receipts),
                      asked, queued = std::chrono::steady_clock::now(), done = std::move(done)] {
    done(pg::Guard("ack", [&]() -> StatusOr<int> {
      pg::Connection& c = impl->QueueConn();
      pg::Transaction ack(c);
      const int acked = pgstore::AckOn(c, queue, receipts, RunsAt(asked, queued));
      ack.Commit();
      return acked;
    }));
  });
}

void PgReader::Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
                     Counted done) {
  impl_->reader.Post([impl = impl_.get(), queues = std::move(queues),
                      push_sinks = std::move(push_sinks), done = std::move(done)] {
    done(pg::Guard("count for metrics", [&]() -> StatusOr<StoreGauges> {
      return pgstore::ReadGauges(impl->Conn(), queues, push_sinks, impl->exact_counts_up_to);
    }));
  });
}

void PgReader::PendingByDay(std::vector<Instant> boundaries,
                            std::function<void(StatusOr<PendingDays>)> done) {
  impl_->days.Post(
      [impl = impl_.get(), boundaries = std::move(boundaries), done = std::move(done)] {
        done(pg::Guard("count pending by day", [&]() -> StatusOr<PendingDays> {
          const auto start = std::chrono::steady_clock::now();
          PendingDays out;
          impl->ThrowIfStopping();
          if (boundaries.size() < 2) return out;
          pg::Connection& c = impl->DaysConn();
          impl->ThrowIfStopping();  // a stop while it was reopened
          pg::Transaction read(c, pg::Transaction::Mode::kSnapshot);
          out.days.resize(boundaries.size() - 1);
          out.before = c.Run(kPendingBefore, pg::Params().Add(Ms(boundaries.front()))).Int64(0, 0);
          impl->ThrowIfStopping();
          out.later = c.Run(kPendingFrom, pg::Params().Add(Ms(boundaries.back()))).Int64(0, 0);
          for (std::size_t i = 0; i + 1 < boundaries.size(); ++i) {
            impl->ThrowIfStopping();
            pg::Result r =
                c.Run(kPendingSpan, pg::Params().Add(Ms(boundaries[i])).Add(Ms(boundaries[i + 1])));
            for (int k = 0; k < r.rows(); ++k) {
              out.days[i][static_cast<int>(r.Int64(k, 0))] = r.Int64(k, 1);
            }
          }
          read.Commit();
          out.took = std::chrono::steady_clock::now() - start;
          return out;
        }));
      });
}

void PgReader::Stop() {
  impl_->stopping = true;
  std::shared_ptr<pg::Canceller> cancel;
  {
    std::lock_guard lock(impl_->cancel_mutex);
    cancel = impl_->days_cancel;
  }
  if (!cancel) return;
  // PQcancel connects to the server: not on the caller's thread, which
  // an unreachable server would hold for the connect's timeout. (Without
  // a thread, the count stops at its next statement.)
  try {
    std::thread([cancel = std::move(cancel)] { cancel->Cancel(); }).detach();
  } catch (const std::system_error&) {
  }
}

void PgReader::Outcomes(OutcomeQuery query, Reported done) {
  impl_->reports.Post([impl = impl_.get(), query = std::move(query), done = std::move(done)] {
    std::vector<OutcomePart> parts;
    try {
      auto first = pg::Connection::Open(impl->url, "touchpointd-report");
      first->set_watched(false);  // a report takes as long as the base makes it
      const std::int64_t last = first->Exec("SELECT COALESCE(MAX(id), 0) FROM buyers").Int64(0, 0);
      const auto n = static_cast<std::int64_t>(ReportParts());
      const std::int64_t span = last / n + 1;
      for (std::int64_t i = 0; i < n; ++i) {
        BuyerRange r;
        r.first = i * span;
        if (i + 1 < n) r.end = (i + 1) * span;
        parts.push_back({r, OutcomeReport(query.options)});
      }
    } catch (const std::exception& e) {
      return done(pg::ToStatus("compute the outcomes report: cannot read the buyers", e));
    }
    const auto read = [&](OutcomePart& part) {
      try {
        auto c = pg::Connection::Open(impl->url, "touchpointd-report");
        c->set_watched(false);
        if (!ReadRange(*c, query, part.range, part.report, impl->stopping)) {
          part.status = Status::Error("stopped");
        }
      } catch (const std::exception& e) {
        part.status = pg::ToStatus("compute the outcomes report", e);
      }
    };
    done(ReadParts(parts, read));
  });
}

}  // namespace tp
