#include "store/store_reader.h"

#include <SQLiteCpp/SQLiteCpp.h>

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

struct StoreReader::Impl {
  explicit Impl(const std::string& path)
      : db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX), rows(db) {
    db.setBusyTimeout(5000);
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex);
      jobs.push_back(std::move(job));
    }
    wake.notify_one();
  }

  void Run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [this] { return !jobs.empty() || stop; });
      if (jobs.empty()) return;  // stopping, and nothing left
      std::function<void()> job = std::move(jobs.front());
      jobs.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  // Used on the thread only.
  SQLite::Database db;
  EventRows rows;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  bool stop = false;
  std::thread thread;  // last: started once the rest exists
};

StatusOr<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& path) {
  try {
    auto impl = std::make_unique<Impl>(path);
    impl->thread = std::thread([p = impl.get()] { p->Run(); });
    return std::unique_ptr<StoreReader>(new StoreReader(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::Error("cannot open database " + path + " to read it: " + e.what());
  }
}

StoreReader::StoreReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StoreReader::~StoreReader() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->wake.notify_one();
  impl_->thread.join();
}

void StoreReader::Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) {
  impl_->Post([impl = impl_.get(), leased = std::move(leased), queue = std::move(queue),
               done = std::move(done)]() mutable {
    if (Status s = impl->rows.Fill(leased, queue); !s.ok()) return done(s);
    done(std::move(leased));
  });
}

void StoreReader::Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
                        Counted done) {
  impl_->Post([impl = impl_.get(), queues = std::move(queues), push_sinks = std::move(push_sinks),
               done = std::move(done)] {
    done(Guard("count for metrics", [&]() -> StatusOr<StoreGauges> {
      return ReadGauges(impl->db, queues, push_sinks);
    }));
  });
}

void StoreReader::Outcomes(OutcomeQuery query, Reported done) {
  impl_->Post([impl = impl_.get(), query = std::move(query), done = std::move(done)] {
    done(Guard("compute the outcomes report", [&]() -> StatusOr<OutcomeReport> {
      OutcomeReport report(query.options);
      ReadOutcomes(impl->db, query, report);
      return report;
    }));
  });
}

}  // namespace tp
