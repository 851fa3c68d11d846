#include "store/store_reader.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "store/event_rows.h"
#include "store/gauges.h"
#include "store/sql.h"

namespace tp {

using sql::Guard;

namespace {

// A thread running the jobs posted to it in order; its destructor waits for
// those already posted.
class JobThread {
 public:
  JobThread() : thread_([this] { Run(); }) {}
  ~JobThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  JobThread(const JobThread&) = delete;
  JobThread& operator=(const JobThread&) = delete;

  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return !jobs_.empty() || stop_; });
      if (jobs_.empty()) return;  // stopping, and nothing left
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest exists
};

// Threads an outcomes report reads on at once: the cores, up to 4.
int ReportParts() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 4U));
}

}  // namespace

struct StoreReader::Impl {
  explicit Impl(const std::string& file)
      : path(file), db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX), rows(db) {
    db.setBusyTimeout(5000);
  }

  std::string path;
  // Used on the reader's thread only.
  SQLite::Database db;
  EventRows rows;
  // Set when closing: a report under way gives up.
  std::atomic<bool> stopping{false};
  // Declared last, so their threads stop before the rest goes: the
  // reports' first (a report does not hold up Fill() and Count()).
  JobThread reader;
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
  impl_->reader.Post([impl = impl_.get(), boundaries = std::move(boundaries),
                      done = std::move(done)] {
    done(Guard("count pending by day",
               [&]() -> StatusOr<PendingDays> { return ReadPendingDays(impl->db, boundaries); }));
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
