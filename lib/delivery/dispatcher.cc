// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_timer.hpp>
#include <functional>
#include <random>
#include <unordered_set>

#include "delivery/dispatcher.h"
#include "delivery/redis_client.h"
#include "delivery/retry.h"
#include "delivery/signature.h"
#include "http/async_client.h"
#include "store/outbox_store.h"

namespace tp {
namespace {

namespace asio = boost::asio;

// Consecutive failed attempts that open a webhook's circuit.
constexpr int kCircuitThreshold = 5;
// A Redis stream's circuit opens on the first failure; it backs off from
// one second to half a minute.
constexpr Millis kRedisBackoffInitial{1'000};
constexpr Millis kRedisBackoffMax{30'000};
constexpr std::size_t kRedisBatch = 256;
// A store error while delivering: try again this much later.
constexpr Millis kStoreRetry{1'000};

std::string Printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  if (text.size() > max) out += "...";
  return out;
}

std::string MsText(Millis ms) { return std::to_string(ms.count()) + " ms"; }

std::string UtcText(Instant at) { return FormatRfc3339(at, UtcZone()); }

// Opens after failures and lets one probe through once its delay is over.
class Circuit {
 public:
  Circuit(int threshold, Millis initial, Millis max)
      : threshold_(threshold), initial_(initial), max_(max) {}

  // How many attempts may start now, given `in_flight` and `limit`.
  std::size_t Slots(Instant now, std::size_t in_flight, std::size_t limit) {
    if (state_ == State::kOpen && now >= open_until_) state_ = State::kHalfOpen;
    if (state_ == State::kOpen) return 0;
    if (state_ == State::kHalfOpen) return in_flight == 0 ? 1 : 0;
    return in_flight < limit ? limit - in_flight : 0;
  }
  bool open() const { return state_ == State::kOpen; }
  Instant open_until() const { return open_until_; }

  // Returns a line to log when the state changed.
  std::string Succeeded() {
    const bool changed = state_ != State::kClosed;
    state_ = State::kClosed;
    failures_ = 0;
    open_for_ = Millis(0);
    last_error_.clear();
    return changed ? "recovered; delivering again" : "";
  }
  std::string Failed(Instant now, const std::string& error) {
    ++failures_;
    last_error_ = error;
    if (state_ == State::kOpen) return "";
    if (state_ == State::kClosed && failures_ < threshold_) return "";
    open_for_ = open_for_.count() == 0 ? initial_ : std::min(open_for_ * 2, max_);
    open_until_ = now + open_for_;
    state_ = State::kOpen;
    return "failing (" + std::to_string(failures_) + " in a row, last: " + error +
           "); pausing deliveries for " + MsText(open_for_);
  }

  SinkHealth Health(const std::string& name) const {
    static constexpr const char* kNames[] = {"ok", "open", "half-open"};
    return {name, kNames[static_cast<int>(state_)], failures_, last_error_};
  }

 private:
  enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen };
  const int threshold_;
  const Millis initial_, max_;
  State state_ = State::kClosed;
  int failures_ = 0;
  Millis open_for_{0};
  Instant open_until_;
  std::string last_error_;
};

class Worker;

}  // namespace

struct Dispatcher::Impl {
  Impl(asio::io_context& io_context, OutboxStore& s, const Clock& c, std::optional<Millis> p)
      : io(io_context), store(s), clock(c), poll(p), flush_timer(io_context) {}

  void Add(std::shared_ptr<Worker> worker, DeliveryResult result);
  void Flush();

  asio::io_context& io;
  OutboxStore& store;
  const Clock& clock;
  const std::optional<Millis> poll;  // a shared store: look at least this often
  std::vector<std::shared_ptr<Worker>> workers;
  // Results not yet written, with the worker each belongs to.
  std::vector<DeliveryResult> results;
  std::vector<std::shared_ptr<Worker>> result_workers;
  bool flush_posted = false;
  asio::system_timer flush_timer;
  bool stopping = false;
  // Events attempted and not yet recorded, of every worker: a worker that
  // replaced another (a reload) must not take what the old one still has.
  std::unordered_set<std::int64_t> busy;
  DeliveryObserver* observer = nullptr;
  std::mt19937_64 rng{std::random_device{}()};
};

namespace {

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(Dispatcher::Impl& d, const Sink& sink, Circuit circuit)
      : d_(d), sink_(sink), circuit_(std::move(circuit)), timer_(d.io) {}
  virtual ~Worker() = default;

  const std::string& name() const { return sink_.name; }
  SinkHealth Health() const { return circuit_.Health(sink_.name); }

  // Coalesces wake-ups into one Pump per loop turn.
  void Wake() {
    if (pump_posted_) return;
    pump_posted_ = true;
    asio::post(d_.io, [self = shared_from_this()] {
      self->pump_posted_ = false;
      self->Pump();
    });
  }

  const Sink& sink() const { return sink_; }

  // An event of this sink's, taken by TakeDue(), is no longer attempted
  // (its result recorded, or put back).
  void Released(std::int64_t id) {
    if (d_.busy.erase(id) > 0 && taken_ > 0) --taken_;
  }

  // No new attempts (the daemon stops, or a reload replaced this worker);
  // those in flight finish and are recorded.
  virtual void Stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    timer_.cancel(ignored);
  }

 protected:
  virtual void Pump() = 0;

  // Sleeps until the circuit half-opens, or the next event is due.
  void ArmTimer(Instant now) {
    std::optional<Instant> at;
    if (circuit_.open()) {
      at = circuit_.open_until();
    } else {
      auto next = d_.store.NextDeliveryAfter(sink_.name, now);
      if (!next.ok()) {
        spdlog::error("sink {}: {}", sink_.name, next.status().message());
        at = now + kStoreRetry;
      } else {
        at = *next;
      }
      if (d_.poll && (!at || *at > now + *d_.poll)) at = now + *d_.poll;
    }
    if (!at) return;
    timer_.expires_at(std::chrono::time_point_cast<std::chrono::system_clock::duration>(*at));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->Pump();
    });
  }

  // Due events not already being attempted, at most `max`. This sink's
  // own attempts in flight come back among the due ones: as many more are
  // asked for (a store other daemons share claims what it returns).
  std::vector<OutboxItem> TakeDue(Instant now, std::size_t max, bool in_order) {
    auto due = d_.store.DueDeliveries(sink_.name, now, max + taken_, in_order);
    if (!due.ok()) {
      spdlog::error("sink {}: {}", sink_.name, due.status().message());
      return {};
    }
    std::vector<OutboxItem> out;
    for (OutboxItem& item : *due) {
      if (out.size() == max) break;
      if (d_.busy.insert(item.id).second) {
        ++taken_;
        out.push_back(std::move(item));
      }
    }
    return out;
  }

  void CircuitFailed(Instant now, const std::string& error) {
    if (auto line = circuit_.Failed(now, error); !line.empty()) {
      spdlog::warn("sink {}: {}", sink_.name, line);
    }
  }
  void CircuitSucceeded() {
    if (auto line = circuit_.Succeeded(); !line.empty()) {
      spdlog::info("sink {}: {}", sink_.name, line);
    }
  }

  Dispatcher::Impl& d_;
  const Sink sink_;
  std::size_t taken_ = 0;  // this sink's events in d_.busy
  Circuit circuit_;
  asio::system_timer timer_;
  bool pump_posted_ = false;
  bool stopped_ = false;
};

class WebhookWorker final : public Worker {
 public:
  WebhookWorker(Dispatcher::Impl& d, const Sink& sink, std::unique_ptr<AsyncHttpClient> client)
      : Worker(d, sink,
               Circuit(kCircuitThreshold, sink.retry.initial,
                       std::min(sink.retry.max_delay, Millis(600'000)))),
        client_(std::move(client)) {}

  void Stop() override {
    Worker::Stop();
    client_->CloseIdle();
  }

 protected:
  void Pump() override {
    if (stopped_) return;
    const Instant now = d_.clock.Now();
    const std::size_t slots =
        circuit_.Slots(now, in_flight_, static_cast<std::size_t>(sink_.concurrency));
    if (slots > 0) {
      for (OutboxItem& item : TakeDue(now, slots, false)) Attempt(std::move(item));
    }
    ArmTimer(now);
  }

 private:
  void Attempt(OutboxItem item) {
    ++in_flight_;
    const auto timestamp =
        std::chrono::duration_cast<std::chrono::seconds>(d_.clock.Now().time_since_epoch()).count();
    OutgoingRequest req;
    req.headers = {{"webhook-id", item.touchpoint_id},
                   {"webhook-timestamp", std::to_string(timestamp)},
                   {"webhook-signature",
                    SignWebhook(item.touchpoint_id, timestamp, item.event, sink_.secrets)}};
    req.body = item.event;  // the same bytes every attempt
    auto self = std::static_pointer_cast<WebhookWorker>(shared_from_this());
    client_->Post(std::move(req),
                  [self, item = std::move(item)](Exchange ex) { self->Done(item, ex); });
  }

  void Done(const OutboxItem& item, const Exchange& ex) {
    --in_flight_;
    const Instant now = d_.clock.Now();
    const int attempt = item.attempts + 1;
    const std::string outcome = (ex.status != 0 ? "HTTP " + std::to_string(ex.status) : ex.error) +
                                " in " + MsText(ex.latency);
    std::string error = ex.status != 0 ? "HTTP " + std::to_string(ex.status) : ex.error;
    if (ex.status != 0 && !ex.body.empty()) error += ": " + Printable(ex.body, 200);

    DeliveryResult r;
    r.id = item.id;
    r.touchpoint = item.touchpoint;
    r.at = now;
    r.attempts = attempt;
    r.latency = ex.latency;
    switch (Judge(ex.status)) {
      case Verdict::kDelivered:
        CircuitSucceeded();
        r.kind = DeliveryResult::Kind::kDelivered;
        r.history = "delivered to " + sink_.name + ": " + outcome + " (attempt " +
                    std::to_string(attempt) + ")";
        spdlog::debug("sink {}: {} {}", sink_.name, item.touchpoint_id, r.history);
        break;
      case Verdict::kDeadLetter:
        CircuitSucceeded();  // the receiver answered: the sink is up
        r.kind = DeliveryResult::Kind::kDead;
        r.error = error;
        r.history = "dead-lettered on " + sink_.name + ": " + outcome + " (attempt " +
                    std::to_string(attempt) + "; a " + std::to_string(ex.status) +
                    " is not retried)";
        spdlog::warn("sink {}: dead-lettered touchpoint {}: {}", sink_.name, item.touchpoint_id,
                     error);
        break;
      case Verdict::kRetry:
        CircuitFailed(now, error);
        r.error = error;
        if (attempt >= sink_.retry.max_attempts) {
          r.kind = DeliveryResult::Kind::kDead;
          r.history = "dead-lettered on " + sink_.name + " after " + std::to_string(attempt) +
                      " attempts: " + outcome;
          spdlog::warn("sink {}: dead-lettered touchpoint {} after {} attempts: {}", sink_.name,
                       item.touchpoint_id, attempt, error);
        } else {
          r.kind = DeliveryResult::Kind::kRetry;
          std::optional<Millis> delay;
          if (!ex.retry_after.empty()) delay = ParseRetryAfter(ex.retry_after, now);
          const bool asked = delay.has_value();
          if (!delay) delay = Backoff(sink_.retry, attempt, d_.rng);
          r.next_attempt_at = now + *delay;
          r.history = "attempt " + std::to_string(attempt) + " on " + sink_.name +
                      " failed: " + outcome + "; next at " + UtcText(r.next_attempt_at) +
                      (asked ? " (as Retry-After asked)" : "");
          spdlog::debug("sink {}: {} {}", sink_.name, item.touchpoint_id, r.history);
        }
        break;
    }
    d_.Add(shared_from_this(), std::move(r));
    if (stopped_ && in_flight_ == 0) client_->CloseIdle();
  }

  std::unique_ptr<AsyncHttpClient> client_;
  std::size_t in_flight_ = 0;
};

class RedisWorker final : public Worker {
 public:
  RedisWorker(Dispatcher::Impl& d, const Sink& sink, Url url)
      : Worker(d, sink, Circuit(1, kRedisBackoffInitial, kRedisBackoffMax)),
        client_(d.io, std::move(url), sink.timeout) {}

  void Stop() override {
    Worker::Stop();
    if (!sending_) client_.Close();
  }

 protected:
  void Pump() override {
    if (stopped_ || sending_) return;
    const Instant now = d_.clock.Now();
    if (circuit_.Slots(now, 0, 1) == 0) return ArmTimer(now);
    std::vector<OutboxItem> items = TakeDue(now, kRedisBatch, true);
    if (items.empty()) return ArmTimer(now);
    std::vector<RedisClient::Command> commands;
    commands.reserve(items.size());
    for (const OutboxItem& item : items) {
      RedisClient::Command c = {"XADD", sink_.stream};
      if (sink_.maxlen) {
        c.insert(c.end(), {"MAXLEN", "~", std::to_string(*sink_.maxlen)});
      }
      c.insert(c.end(),
               {"*", "id", item.touchpoint_id, "type", "touchpoint.due", "event", item.event});
      commands.push_back(std::move(c));
    }
    sending_ = true;
    const auto started = std::chrono::steady_clock::now();
    auto self = std::static_pointer_cast<RedisWorker>(shared_from_this());
    client_.Pipeline(std::move(commands), [self, items = std::move(items), started](
                                              Status status, std::vector<RedisReply> replies) {
      self->Done(items, status, replies, started);
    });
  }

 private:
  void Done(const std::vector<OutboxItem>& items, const Status& status,
            const std::vector<RedisReply>& replies, std::chrono::steady_clock::time_point started) {
    sending_ = false;
    const Instant now = d_.clock.Now();
    const auto latency =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
    std::size_t ok = 0;
    for (; ok < items.size() && ok < replies.size() && !replies[ok].error; ++ok) {
      DeliveryResult r;
      r.id = items[ok].id;
      r.touchpoint = items[ok].touchpoint;
      r.kind = DeliveryResult::Kind::kDelivered;
      r.at = now;
      r.attempts = items[ok].attempts + 1;
      r.latency = latency;
      r.history = "added to stream " + sink_.stream + " on " + sink_.name + " as " +
                  replies[ok].text + " in " + MsText(latency);
      d_.Add(shared_from_this(), std::move(r));
    }
    // The rest waits, in order, for the next try: nothing was recorded.
    for (std::size_t i = ok; i < items.size(); ++i) Released(items[i].id);
    if (ok < items.size()) {
      const std::string error = !status.ok()          ? status.message()
                                : ok < replies.size() ? "XADD refused: " + replies[ok].text
                                                      : "missing replies";
      CircuitFailed(now, error);
      if (stopped_) {
        client_.Close();
        return;
      }
      ArmTimer(now);
      return;
    }
    CircuitSucceeded();
    if (stopped_) client_.Close();
    // More may be due; the flush wakes this worker once the results are in.
  }

  RedisClient client_;
  bool sending_ = false;
};

}  // namespace

void Dispatcher::Impl::Add(std::shared_ptr<Worker> worker, DeliveryResult result) {
  results.push_back(std::move(result));
  result_workers.push_back(std::move(worker));
  if (flush_posted) return;
  flush_posted = true;
  asio::post(io, [this] { Flush(); });
}

void Dispatcher::Impl::Flush() {
  flush_posted = false;
  if (results.empty()) return;
  if (Status s = store.RecordDeliveries(results); !s.ok()) {
    // Kept, and their events stay busy, until they can be written.
    spdlog::error("recording deliveries: {}; retrying in 1s", s.message());
    flush_posted = true;
    flush_timer.expires_after(kStoreRetry);
    flush_timer.async_wait([this](const boost::system::error_code& ec) {
      flush_posted = false;
      if (!ec || stopping) Flush();
    });
    return;
  }
  std::vector<std::string> touched;
  for (std::size_t i = 0; i < results.size(); ++i) {
    result_workers[i]->Released(results[i].id);
    if (observer != nullptr) {
      static constexpr std::string_view kOutcomes[] = {"delivered", "retried", "dead_lettered"};
      observer->OnAttempt(result_workers[i]->name(), kOutcomes[static_cast<int>(results[i].kind)],
                          results[i].latency);
    }
    const std::string& name = result_workers[i]->name();
    if (std::find(touched.begin(), touched.end(), name) == touched.end()) touched.push_back(name);
  }
  results.clear();
  result_workers.clear();
  // The sink's current worker: the one that attempted may have been replaced.
  for (auto& w : workers) {
    if (std::find(touched.begin(), touched.end(), w->name()) != touched.end()) w->Wake();
  }
}

Dispatcher::Dispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dispatcher::~Dispatcher() = default;

namespace {

StatusOr<std::shared_ptr<Worker>> MakeWorker(Dispatcher::Impl& impl, const Sink& sink) {
  if (sink.type == Sink::Type::kWebhook) {
    auto url = ParseHttpUrl(sink.url);
    if (!url.ok()) return Status::Error("sink " + sink.name + ": " + url.status().message());
    AsyncHttpClientOptions options;
    options.timeout = sink.timeout;
    options.ca_file = sink.ca_file;
    options.tls_verify = sink.tls_verify;
    options.user_agent = "touchpoint-webhooks";
    auto client = AsyncHttpClient::Create(impl.io, *url, options);
    if (!client.ok()) return Status::Error("sink " + sink.name + ": " + client.status().message());
    if (!sink.tls_verify) {
      spdlog::warn("sink {}: TLS certificates are not verified (tls_verify: false)", sink.name);
    }
    return std::shared_ptr<Worker>(std::make_shared<WebhookWorker>(impl, sink, std::move(*client)));
  }
  auto url = ParseRedisUrl(sink.url);
  if (!url.ok()) return Status::Error("sink " + sink.name + ": " + url.status().message());
  return std::shared_ptr<Worker>(std::make_shared<RedisWorker>(impl, sink, std::move(*url)));
}

// Whether a worker for `a` can go on serving `b` unchanged.
bool SameDelivery(const Sink& a, const Sink& b) {
  return a.name == b.name && a.type == b.type && a.url == b.url && a.secrets == b.secrets &&
         a.timeout == b.timeout && a.retry.initial == b.retry.initial &&
         a.retry.max_delay == b.retry.max_delay && a.retry.max_attempts == b.retry.max_attempts &&
         a.concurrency == b.concurrency && a.ca_file == b.ca_file && a.tls_verify == b.tls_verify &&
         a.stream == b.stream && a.maxlen == b.maxlen;
}

// Events left for sinks no longer configured wait; say so.
void WarnOrphans(OutboxStore& store, const Rules& rules) {
  auto waiting = store.OutboxBySink();
  if (!waiting.ok()) return;
  for (const auto& entry : *waiting) {
    const std::string& name = entry.first;
    const std::int64_t count = entry.second;
    const bool known = std::any_of(rules.sinks.begin(), rules.sinks.end(),
                                   [&](const Sink& s) { return s.name == name && s.IsPush(); });
    if (!known) {
      spdlog::warn(
          "outbox holds {} events for sink '{}', which the config no longer has; "
          "they wait until it is configured again",
          count, name);
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
  for (auto& w : d.workers) {
    if (std::find(next.begin(), next.end(), w) == next.end()) w->Stop();
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
}

void Dispatcher::set_observer(DeliveryObserver* observer) { impl_->observer = observer; }

std::vector<SinkHealth> Dispatcher::Health() const {
  std::vector<SinkHealth> out;
  for (const auto& w : impl_->workers) out.push_back(w->Health());
  return out;
}

}  // namespace tp
