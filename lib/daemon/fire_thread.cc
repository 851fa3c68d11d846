#include "daemon/fire_thread.h"

#include <boost/asio/post.hpp>

#include "daemon/replanner.h"

namespace tp {

namespace asio = boost::asio;

FireThread::FireThread(asio::io_context& loop, const RulesInForce& loop_rules,
                       SchedulerObserver* observer, Hooks hooks)
    : loop_(loop),
      loop_rules_(loop_rules),
      observer_(observer),
      hooks_(std::move(hooks)),
      work_(io_.get_executor()),
      rules_(loop_rules.shared()),
      recorder_(std::make_unique<ObserverLog>()) {
  shared_.rules = loop_rules.shared();
}

StatusOr<std::unique_ptr<FireThread>> FireThread::Open(asio::io_context& loop,
                                                       const RulesInForce& loop_rules,
                                                       const Clock& clock,
                                                       SchedulerObserver* observer, Hooks hooks,
                                                       const OpenStore& open) {
  std::unique_ptr<FireThread> self(new FireThread(loop, loop_rules, observer, std::move(hooks)));
  auto store = open(self->rules_);
  if (!store.ok()) return store.status();
  self->store_ = std::move(*store);
  self->scheduler_ = std::make_unique<Scheduler>(*self->store_, clock, self->rules_);
  self->scheduler_->set_observer(self->recorder_.get());
  FireThread* t = self.get();
  self->fire_ = std::make_unique<FireLoop>(
      self->io_, *self->store_, *self->scheduler_, clock,
      FireLoop::Hooks{
          .may_fire = [t] { return t->Read().may_fire; },
          .covered = [t](Instant now) { return Replanner::Covers(t->Read().covered_until, now); },
          .storage_full = [t] { t->PostToLoop(t->hooks_.storage_full); },
          .fired = [t] { t->PostToLoop(t->hooks_.fired); },
          .passed = [t] { t->Report(); },
          .health_changed =
              [t](const FiringHealth& health) {
                const std::lock_guard<std::mutex> lock(t->mutex_);
                t->health_ = health;
              },
          .poll = t->hooks_.poll});
  return self;
}

FireThread::~FireThread() { Stop(); }

void FireThread::Publish(bool may_fire) {
  Snapshot next{may_fire, hooks_.covered_until(), loop_rules_.shared()};
  const std::lock_guard<std::mutex> lock(mutex_);
  shared_ = std::move(next);
}

FireThread::Snapshot FireThread::Read() {
  Snapshot now;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    now = shared_;
  }
  if (now.rules != rules_.shared()) rules_.Swap(now.rules);
  return now;
}

FiringHealth FireThread::Health() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return health_;
}

void FireThread::PostToLoop(std::function<void()> fn) {
  asio::post(loop_, [alive = std::weak_ptr<char>(alive_), fn = std::move(fn)] {
    if (!alive.expired()) fn();
  });
}

void FireThread::Report() {
  auto seen = recorder_->Take();
  if (seen.empty() || observer_ == nullptr) return;
  PostToLoop(
      [observer = observer_, seen = std::move(seen)] { ObserverLog::Tell(seen, *observer); });
}

void FireThread::Start() {
  if (stopped_ || thread_.joinable()) return;
  Publish(hooks_.may_fire());
  asio::post(io_, [this] { fire_->Start(); });
  thread_ = std::thread([this] { io_.run(); });
}

void FireThread::Rearm(bool force) {
  if (stopped_) return;
  Publish(hooks_.may_fire());
  asio::post(io_, [this, force] { fire_->Rearm(force); });
}

void FireThread::Pause() {
  if (stopped_) return;
  Publish(false);
  asio::post(io_, [this] { fire_->Pause(); });
}

void FireThread::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    shared_.may_fire = false;
  }
  // After the pass in progress; what is still queued is dropped.
  asio::post(io_, [this] {
    fire_->Stop();
    io_.stop();
  });
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tp
