#include "daemon/fire_loop.h"

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/text.h"

namespace tp {

FireLoop::FireLoop(boost::asio::io_context& io, ScheduleStore& store, Scheduler& scheduler,
                   const Clock& clock, Hooks hooks)
    : io_(io),
      store_(store),
      scheduler_(scheduler),
      clock_(clock),
      hooks_(std::move(hooks)),
      timer_(io),
      retry_(io),
      clock_jumps_(io) {}

void FireLoop::Start() {
  WatchClockJumps();
  Rearm(true);
}

void FireLoop::Pause() {
  ++pauses_;
  armed_.reset();
  timer_.cancel();
  retry_.cancel();
  // Waiting now, not failing: the store's state says why (/healthz).
  ClearHealth();
}

void FireLoop::Stop() {
  stopped_ = true;
  timer_.cancel();
  retry_.cancel();
  boost::system::error_code ignored;
  clock_jumps_.close(ignored);
}

void FireLoop::Rearm(bool force) {
  if (stopped_ || !hooks_.may_fire()) return;
  auto next = store_.NextWakeup();
  if (!next.ok()) {
    return RetrySoon("reading the next wakeup: " + next.status().message(), /*pass=*/false);
  }
  // A read that works clears failed reads, not failed passes (they fail
  // again between reads that work), unless nothing is due any more.
  if (!pass_failed_ || !*next || **next > clock_.Now()) Succeeded();
  std::optional<Instant> at = *next;
  if (hooks_.poll) {
    // Shared: what is due now is another daemon's while it holds it.
    const Instant now = clock_.Now();
    if (at && *at <= now && idle_pass_) at = now + kHeldRetry;
    if (!at || *at > now + *hooks_.poll) at = now + *hooks_.poll;
  }
  if (!at) {
    armed_.reset();
    timer_.cancel();
    return;
  }
  if (!force && armed_ && *armed_ == *at) return;
  armed_ = *at;
  // A day ahead at most: the timer counts nanoseconds, which end in 2262,
  // and a step may be planned later than that. Woken a day ahead, the loop
  // finds nothing due and arms it again.
  if (const Instant now = clock_.Now(); *at > now + kLongestWait) at = now + kLongestWait;
  timer_.expires_at(std::chrono::time_point_cast<std::chrono::system_clock::duration>(*at));
  timer_.async_wait([this, pauses = pauses_](const boost::system::error_code& ec) {
    if (ec || pauses != pauses_) return;  // re-armed, stopped or paused
    armed_.reset();
    RunDue();
  });
}

void FireLoop::RunDue() {
  if (stopped_ || !hooks_.may_fire()) return;
  // A touchpoint the re-plan has not reached waits for it (the daemon
  // re-arms after each of its steps).
  if (!hooks_.covered(clock_.Now())) return;
  auto stats = scheduler_.RunDue(kBatchesPerTurn);
  if (hooks_.passed) hooks_.passed();
  if (!stats.ok() && stats.status().unavailable()) {
    // Paused if the store cannot take writes (which cancels the retry and
    // clears the failure: on the loop, at once); if it can again (a
    // connection lost and reopened), the next pass comes anyway.
    RetrySoon("firing due touchpoints: " + stats.status().message(), /*pass=*/true);
    hooks_.storage_full();
    return;
  }
  if (!stats.ok()) {
    return RetrySoon("firing due touchpoints: " + stats.status().message(), /*pass=*/true);
  }
  Succeeded();
  idle_pass_ = stats->fired + stats->deferred + stats->skipped == 0;
  if (stats->fired + stats->deferred + stats->skipped > 0) {
    spdlog::debug("scheduler: fired {}, deferred {}, skipped {}", stats->fired, stats->deferred,
                  stats->skipped);
  }
  if (stats->skipped > 0) {
    spdlog::warn("skipped {} missed by more than misfire_grace",
                 Plural(static_cast<long long>(stats->skipped), "touchpoint"));
  }
  if (stats->fired > 0) hooks_.fired();
  if (stats->more) {
    boost::asio::post(io_, [this] { RunDue(); });
    return;
  }
  Rearm(false);
}

void FireLoop::Succeeded() {
  if (health_.consecutive_failures == 0) return;
  spdlog::info("firing works again after {}", Plural(health_.consecutive_failures, "failure"));
  ClearHealth();
}

void FireLoop::ClearHealth() {
  if (health_.consecutive_failures == 0) return;
  health_ = {};
  pass_failed_ = false;
  if (hooks_.health_changed) hooks_.health_changed(health_);
}

void FireLoop::RetrySoon(const std::string& what, bool pass) {
  pass_failed_ = pass_failed_ || pass;
  ++health_.consecutive_failures;
  health_.last_error = what;
  if (hooks_.health_changed) hooks_.health_changed(health_);
  spdlog::error("{}; retrying in {} ms", what, hooks_.retry.count());
  retry_.expires_after(hooks_.retry);
  retry_.async_wait([this, pauses = pauses_](const boost::system::error_code& ec) {
    if (!ec && pauses == pauses_) Rearm(true);
  });
}

void FireLoop::WatchClockJumps() {
  const int fd = ::timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("cannot watch for wall clock changes: {}", std::strerror(errno));
    return;
  }
  clock_jumps_.assign(fd);
  ArmClockJumpWatch();
}

void FireLoop::ArmClockJumpWatch() {
  itimerspec spec{};
  spec.it_value.tv_sec = std::time(nullptr) + 10L * 365 * 86400;
  if (::timerfd_settime(clock_jumps_.native_handle(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                        &spec, nullptr) != 0) {
    spdlog::warn("cannot watch for wall clock changes: {}", std::strerror(errno));
    return;
  }
  clock_jumps_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        std::uint64_t expirations = 0;
        if (::read(clock_jumps_.native_handle(), &expirations, sizeof expirations) < 0 &&
            errno == ECANCELED) {
          spdlog::info("wall clock changed; rescheduling");
        }
        ArmClockJumpWatch();
        Rearm(true);
      });
}

}  // namespace tp
