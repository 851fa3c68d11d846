// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>

#include <algorithm>

#include "delivery/dispatcher.h"
#include "delivery/worker.h"
#include "store/outbox_store.h"

namespace tp {

namespace asio = boost::asio;

Dispatcher::Dispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dispatcher::~Dispatcher() = default;

namespace {

StatusOr<std::shared_ptr<Worker>> MakeWorker(Dispatcher::Impl& impl, const Sink& sink) {
  return sink.type == Sink::Type::kWebhook ? MakeWebhookWorker(impl, sink)
                                           : MakeRedisWorker(impl, sink);
}

// Whether a worker for `a` can go on serving `b` unchanged.
bool SameDelivery(const Sink& a, const Sink& b) {
  return a.name == b.name && a.type == b.type && a.url == b.url && a.secrets == b.secrets &&
         a.timeout == b.timeout && a.retry.initial == b.retry.initial &&
         a.retry.max_delay == b.retry.max_delay && a.retry.max_attempts == b.retry.max_attempts &&
         a.concurrency == b.concurrency && a.ca_file == b.ca_file && a.ca_pem == b.ca_pem &&
         a.tls_verify == b.tls_verify && a.stream == b.stream && a.maxlen == b.maxlen;
}

// Events left for sinks no longer configured wait; say so. On the loop, at
// start and at each reload: counted up to kCountLimit each, so that an
// outbox of millions (a sink down for hours) does not hold it.
void WarnOrphans(OutboxStore& store, const Rules& rules) {
  constexpr std::int64_t kCountLimit = 10'000;
  auto waiting = store.OutboxBySink(kCountLimit);
  if (!waiting.ok()) return;
  for (const auto& entry : *waiting) {
    const std::string& name = entry.first;
    const std::int64_t count = entry.second;
    const bool known = std::any_of(rules.sinks.begin(), rules.sinks.end(),
                                   [&](const Sink& s) { return s.name == name && s.IsPush(); });
    if (!known) {
      spdlog::warn(
          "outbox holds {}{} events for sink '{}', which the config no longer has; "
          "they wait until it is configured again",
          count == kCountLimit ? "at least " : "", count, name);
    }
  }
}

}  // namespace

StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Create(asio::io_context& io, OutboxStore& store,
                                                         const Clock& clock, const Rules& rules,
                                                         std::optional<Millis> poll) {
  auto impl = std::make_unique<Impl>(io, store, clock, poll);
  for (const Sink& sink : rules.sinks) {
    if (!sink.IsPush()) continue;
    auto worker = MakeWorker(*impl, sink);
    if (!worker.ok()) return worker.status();
    impl->workers.push_back(std::move(*worker));
  }
  WarnOrphans(store, rules);
  return std::unique_ptr<Dispatcher>(new Dispatcher(std::move(impl)));
}

struct Dispatcher::Prepared::Workers {
  std::vector<std::shared_ptr<Worker>> workers;
};
Dispatcher::Prepared::Prepared(std::unique_ptr<Workers> workers) : workers_(std::move(workers)) {}
Dispatcher::Prepared::Prepared(Prepared&&) noexcept = default;
Dispatcher::Prepared& Dispatcher::Prepared::operator=(Prepared&&) noexcept = default;
Dispatcher::Prepared::~Prepared() = default;

StatusOr<Dispatcher::Prepared> Dispatcher::Prepare(const Rules& rules) {
  Impl& d = *impl_;
  auto next = std::make_unique<Prepared::Workers>();
  for (const Sink& sink : rules.sinks) {
    if (!sink.IsPush()) continue;
    auto same = std::find_if(d.workers.begin(), d.workers.end(),
                             [&](const auto& w) { return SameDelivery(w->sink(), sink); });
    if (same != d.workers.end()) {
      next->workers.push_back(*same);  // keeps its connections and circuit
      continue;
    }
    auto worker = MakeWorker(d, sink);
    if (!worker.ok()) return worker.status();
    next->workers.push_back(std::move(*worker));
  }
  return Prepared(std::move(next));
}

void Dispatcher::Commit(Prepared prepared, const Rules& rules) {
  Impl& d = *impl_;
  std::vector<std::shared_ptr<Worker>>& next = prepared.workers_->workers;
  std::erase_if(d.retired, [](const std::weak_ptr<Worker>& w) { return w.expired(); });
  for (auto& w : d.workers) {
    if (std::find(next.begin(), next.end(), w) != next.end()) continue;
    w->Stop();
    d.retired.push_back(w);
  }
  d.workers = std::move(next);
  WarnOrphans(d.store, rules);
  if (!d.stopping) {
    for (auto& w : d.workers) w->Wake();
  }
}

void Dispatcher::Wake() {
  if (impl_->stopping) return;
  for (auto& w : impl_->workers) w->Wake();
}

void Dispatcher::Stop() {
  impl_->stopping = true;
  for (auto& w : impl_->workers) w->Stop();
  for (auto& retired : impl_->retired) {
    if (auto w = retired.lock()) w->CancelLetGo();
  }
}

void Dispatcher::set_observer(DeliveryObserver* observer) { impl_->observer = observer; }

void Dispatcher::set_store_unavailable(std::function<void()> called) {
  impl_->store_unavailable = std::move(called);
}

std::vector<SinkHealth> Dispatcher::Health() const {
  std::vector<SinkHealth> out;
  for (const auto& w : impl_->workers) out.push_back(w->Health());
  return out;
}

}  // namespace tp
