#include "store/store_reader.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "core/job_thread.h"
#include "store/event_rows.h"
#include "store/gauges.h"
#include "store/outcome_merge.h"
#include "store/sql.h"

namespace tp {

using sql::Guard;

struct StoreReader::Impl {
  explicit Impl(const std::string& file)
      : path(file),
        db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX),
        days_db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX),
        rows(db) {
    db.setBusyTimeout(5000);
    days_db.setBusyTimeout(5000);
    // A count of the days gives up once stopping (every 1,000 of SQLite's
    // steps: an interrupt could be lost between its statements).
    sqlite3_progress_handler(
        days_db.getHandle(), 1000,
        [](void* flag) { return static_cast<std::atomic<bool>*>(flag)->load() ? 1 : 0; },
        &stopping);
  }

  std::string path;
  // Used on the reader's thread only.
  SQLite::Database db;
  // Used on the days' thread only.
  SQLite::Database days_db;
  EventRows rows;
  // Set when closing: a report under way gives up.
  std::atomic<bool> stopping{false};
  // Declared last, so their threads stop before the rest goes: the
  // reports' first. A report does not hold up Fill() and Count(), nor do
  // the days (a scan of every pending row: 200 ms at a million).
  JobThread reader;
  JobThread days;
  JobThread reports;
};

StatusOr<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& path) {
  try {
    return std::unique_ptr<StoreReader>(new StoreReader(std::make_unique<Impl>(path)));
  } catch (const std::exception& e) {
    return Status::Error("cannot open database " + path + " to read it: " + e.what());
  }
}

StoreReader::StoreReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StoreReader::~StoreReader() { impl_->stopping = true; }

void StoreReader::Stop() { impl_->stopping = true; }

void StoreReader::Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) {
  impl_->reader.Post([impl = impl_.get(), leased = std::move(leased), queue = std::move(queue),
                      done = std::move(done)]() mutable {
    if (Status s = impl->rows.Fill(leased, queue); !s.ok()) return done(s);
    done(std::move(leased));
  });
}

void StoreReader::Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
                        Counted done) {
  impl_->reader.Post([impl = impl_.get(), queues = std::move(queues),
                      push_sinks = std::move(push_sinks), done = std::move(done)] {
    done(Guard("count for metrics", [&]() -> StatusOr<StoreGauges> {
      return ReadGauges(impl->db, queues, push_sinks);
    }));
  });
}

void StoreReader::PendingByDay(std::vector<Instant> boundaries,
                               std::function<void(StatusOr<PendingDays>)> done) {
  impl_->days.Post(
      [impl = impl_.get(), boundaries = std::move(boundaries), done = std::move(done)] {
        done(Guard("count pending by day", [&]() -> StatusOr<PendingDays> {
          if (impl->stopping) return Status::Error("count pending by day: the daemon is stopping");
          const auto start = std::chrono::steady_clock::now();
          PendingDays days = ReadPendingDays(impl->days_db, boundaries);
          days.took = std::chrono::steady_clock::now() - start;
          return days;
        }));
      });
}

void StoreReader::Outcomes(OutcomeQuery query, Reported done) {
  impl_->reports.Post([impl = impl_.get(), query = std::move(query), done = std::move(done)] {
    auto report = ComputeOutcomes(impl->path, query, ReportParts(), impl->stopping);
    if (!report.ok()) {
      return done(Status::Error("compute the outcomes report: " + report.status().message()));
    }
    done(std::move(*report));
  });
}

}  // namespace tp
