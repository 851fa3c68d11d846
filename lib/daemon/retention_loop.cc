#include "daemon/retention_loop.h"

#include <spdlog/spdlog.h>

#include "core/text.h"

namespace tp {

RetentionLoop::RetentionLoop(boost::asio::io_context& io, RetentionStore& store, const Clock& clock,
                             const RulesInForce& rules, Hooks hooks)
    : timer_(io), store_(store), clock_(clock), rules_(rules), hooks_(std::move(hooks)) {}

void RetentionLoop::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void RetentionLoop::Schedule(std::chrono::steady_clock::duration delay) {
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Step();
  });
}

void RetentionLoop::Step() {
  if (stopped_) return;
  const Rules& rules = *rules_;
  if (!rules.retention) {
    cursor_ = deleted_in_pass_ = 0;
    return Schedule(kInterval);
  }
  // A pass keeps the cutoff it started with, unless a reload lengthened the
  // retention meanwhile. (Its first steps read the queues and return
  // cursor 0 again; the store prunes by the cutoff it read them with, or
  // an earlier one: store/queued_before.h.)
  const Instant cutoff = clock_.Now() - rules.retention->Exact();
  if (cursor_ == 0 || cutoff < cutoff_) cutoff_ = cutoff;
  auto step = store_.PruneFinished(cutoff_, cursor_, kSpan);
  if (!step.ok()) {
    spdlog::error("retention: {}; trying again in 10 minutes", step.status().message());
    cursor_ = deleted_in_pass_ = 0;
    Schedule(kInterval);
    if (hooks_.failed) hooks_.failed(step.status());
    return;
  }
  deleted_in_pass_ += step->deleted;
  if (hooks_.deleted) hooks_.deleted(step->deleted);
  if (!step->done) {
    cursor_ = step->next;
    return Schedule(kPause);
  }
  if (deleted_in_pass_ > 0) {
    spdlog::info("retention: deleted {} finished before {} (retention {})",
                 Plural(deleted_in_pass_, "touchpoint"), FormatRfc3339(cutoff_, UtcZone()),
                 rules.retention->ToString());
  }
  cursor_ = deleted_in_pass_ = 0;
  Schedule(kInterval);
}

}  // namespace tp
