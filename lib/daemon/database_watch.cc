#include "daemon/database_watch.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace tp {

DatabaseWatch::DatabaseWatch(boost::asio::io_context& io, std::function<Status()> probe,
                             std::function<Millis()> longest_wait, const Clock& clock,
                             DaemonMetrics& metrics, std::function<void(bool paused)> changed)
    : io_(io),
      probe_(std::move(probe)),
      longest_wait_(std::move(longest_wait)),
      clock_(clock),
      metrics_(metrics),
      changed_(std::move(changed)),
      timer_(io),
      stall_timer_(io) {}

void DatabaseWatch::Start() {
  Check(true);
  WatchStalls();
}

void DatabaseWatch::WatchStalls() {
  stall_timer_.expires_after(kStallCheck);
  stall_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!down_ && !probing_ && (!stall_probed_ || now - *stall_probed_ >= kStalled) &&
        longest_wait_() >= kStalled) {
      stall_probed_ = now;
      Probe();
    }
    WatchStalls();
  });
}

DatabaseWatch::~DatabaseWatch() {
  Stop();
  if (prober_.joinable()) prober_.join();
}

void DatabaseWatch::Stop() {
  stopped_ = true;
  timer_.cancel();
  stall_timer_.cancel();
}

void DatabaseWatch::Check(bool failed) {
  // While down, the backoff's timer probes (Check() without `failed`): a
  // call failing meanwhile (every second, from each thread that retries)
  // adds nothing.
  if (stopped_ || (!failed && !down_) || (failed && down_)) return;
  Probe();
}

void DatabaseWatch::Probe() {
  if (probing_) return;  // its answer decides
  probing_ = true;
  // The last probe's thread has posted its answer, its last act.
  if (prober_.joinable()) prober_.join();
  try {
    prober_ = std::thread([this, alive = std::weak_ptr<int>(alive_)] {
      Status answer = probe_();
      boost::asio::post(io_, [this, alive, answer = std::move(answer)] {
        if (!alive.expired()) Answered(answer);
      });
    });
  } catch (const std::system_error& e) {
    // No thread to probe on: not a probe under way, and while down the
    // backoff's timer tries again (else nothing would).
    probing_ = false;
    spdlog::error("cannot start a probe of the database: {}", e.what());
    if (down_) RetryLater();
  }
}

void DatabaseWatch::Answered(const Status& answer) {
  probing_ = false;
  if (stopped_) return;
  if (answer.ok()) {
    if (down_) {
      spdlog::info("the database answers again after {} ms: resuming",
                   (clock_.Now() - *since_).count());
      down_ = false;
      since_.reset();
      reason_.clear();
      backoff_ = kFirstRetry;
      timer_.cancel();
      if (metrics_.database_up != nullptr) metrics_.database_up->Set({}, 1);
      changed_(false);
    }
    return;
  }
  reason_ = answer.message();
  if (!down_) {
    spdlog::error("{}; refusing purchases and pausing firing until it does", reason_);
    down_ = true;
    since_ = clock_.Now();
    if (metrics_.database_up != nullptr) metrics_.database_up->Set({}, 0);
    changed_(true);
  }
  RetryLater();
}

void DatabaseWatch::RetryLater() {
  timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxRetry);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    Check();
  });
}

nlohmann::json DatabaseWatch::Health() const {
  nlohmann::json storage = {{"state", down_ ? "unreachable" : "ok"}, {"backend", "postgresql"}};
  if (since_) storage["since"] = FormatRfc3339(*since_, UtcZone());
  if (!reason_.empty()) storage["reason"] = reason_;
  return storage;
}

}  // namespace tp
