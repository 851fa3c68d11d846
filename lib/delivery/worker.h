// The dispatcher's parts (delivery/dispatcher.cc): its state, shared by
// its workers, and the base of a push sink's worker, which takes due
// events from the outbox, attempts them (WebhookWorker in
// webhook_worker.cc, RedisWorker in redis_worker.cc) and hands the results
// to the dispatcher, which records them in batches. Internal to
// lib/delivery; all on the daemon's loop.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <boost/asio/system_timer.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "delivery/circuit.h"
#include "delivery/dispatcher.h"
#include "store/outbox_store.h"

namespace tp {

// A store error while delivering: try again this much later.
inline constexpr Millis kStoreRetry{1'000};
// Stopping, results the store cannot take are tried again this many times
// (a kStoreRetry apart), then given up: their events are sent again, by
// whichever daemon claims them next or at the next start (at-least-once),
// rather than the loop never running out and systemd killing the daemon.
inline constexpr int kStopFlushTries = 3;

class Worker;

struct Dispatcher::Impl {
  Impl(boost::asio::io_context& io_context, OutboxStore& s, const Clock& c, std::optional<Millis> p)
      : io(io_context), store(s), clock(c), poll(p), flush_timer(io_context) {}

  // A worker's result, recorded with the others of this loop turn.
  void Add(std::shared_ptr<Worker> worker, DeliveryResult result);
  void Flush();
  // A store call failed: one for want of the store (Unavailable) is told
  // to the daemon (store_unavailable), which then probes the database.
  void StoreFailed(const Status& failed) const {
    if (failed.unavailable() && store_unavailable && !stopping) store_unavailable();
  }

  boost::asio::io_context& io;
  OutboxStore& store;
  const Clock& clock;
  const std::optional<Millis> poll;  // a shared store: look at least this often
  std::vector<std::shared_ptr<Worker>> workers;
  // Results not yet written, with the worker each belongs to.
  std::vector<DeliveryResult> results;
  std::vector<std::shared_ptr<Worker>> result_workers;
  bool flush_posted = false;  // a Flush() is posted to the loop
  bool retry_armed = false;   // flush_timer waits to write what could not be
  boost::asio::system_timer flush_timer;
  bool stopping = false;
  int stop_retries = 0;  // flush_timer's tries while stopping, since results last went in
  // Events attempted and not yet recorded, of every worker, with the worker
  // attempting each (alive while it has any: a result keeps its worker): a
  // worker that replaced another (a reload) must not take what the old one
  // still has.
  std::unordered_map<std::int64_t, const Worker*> busy;
  // Workers reloads replaced, alive while something holds them (a result
  // in flight, a let-go to try again): Stop() ends their waits too.
  std::vector<std::weak_ptr<Worker>> retired;
  DeliveryObserver* observer = nullptr;
  std::function<void()> store_unavailable;
  std::mt19937_64 rng{std::random_device{}()};
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(Dispatcher::Impl& d, const Sink& sink, Circuit circuit)
      : d_(d), sink_(sink), circuit_(std::move(circuit)), timer_(d.io) {}
  virtual ~Worker() = default;

  const std::string& name() const { return sink_.name; }
  SinkHealth Health() const { return circuit_.Health(sink_.name); }
  const Sink& sink() const { return sink_; }

  // Coalesces wake-ups into one Pump per loop turn.
  void Wake();
  // An event of this sink's, taken by TakeDue(), is no longer attempted
  // (its result recorded, or put back). A worker a reload replaced wakes
  // the one that replaced it.
  void Released(std::int64_t id);
  // No new attempts (the daemon stops, or a reload replaced this worker);
  // those in flight finish and are recorded. (A let-go waiting to be tried
  // again is cancelled once the daemon stops.)
  virtual void Stop();
  // Cancels a let-go waiting to be tried again (the daemon stops).
  void CancelLetGo();

 protected:
  virtual void Pump() = 0;

  // Sleeps until the circuit half-opens, or the next event is due.
  void ArmTimer(Instant now);
  // Due events not already being attempted, at most `max`. This sink's
  // own attempts in flight come back among the due ones: as many more are
  // asked for (a store other daemons share claims what it returns).
  // In order (`in_order`, a stream): only those before the first event
  // another worker still attempts (one this worker replaced at a reload),
  // so that none goes ahead of it. (Its own, sent and not yet recorded,
  // are passed over.)
  std::vector<OutboxItem> TakeDue(Instant now, std::size_t max, bool in_order);
  void CircuitFailed(Instant now, const std::string& error);
  void CircuitSucceeded();
  // The outbox read (`failed` not ok), or claimed from again (ok): the
  // first failure logged, then one line a kStoreLogEvery while it goes
  // on, and one when it ends (a store away for a while would otherwise
  // log at each pump).
  void OutboxRead(const Status& failed, Instant now);
  static constexpr Millis kStoreLogEvery{30'000};
  // An in-order sink that no worker of this daemon delivers (stopped, or
  // its circuit open) and none has anything of in flight: the store may let
  // another daemon deliver it (OutboxStore::LetGoOfSink). If the store is
  // away, tried again every kStoreRetry while the daemon runs: claims
  // left under a session that ended count as taken over at the next
  // deliverer (as they still do if it takes the sink meanwhile).
  void MaybeLetGo();

  Dispatcher::Impl& d_;
  const Sink sink_;
  std::size_t taken_ = 0;  // this sink's events in d_.busy
  Circuit circuit_;
  boost::asio::system_timer timer_;
  boost::asio::system_timer let_go_timer_{d_.io};  // MaybeLetGo() again
  bool let_go_armed_ = false;
  bool pump_posted_ = false;
  bool stopped_ = false;
  bool in_order_ = false;  // TakeDue() was asked for events in order
  std::optional<Instant> store_failing_since_, store_logged_;
};

// A worker for a webhook sink (webhook_worker.cc), or for a Redis stream
// (redis_worker.cc). Fail when the sink cannot be set up (its URL, a CA
// file OpenSSL rejects).
StatusOr<std::shared_ptr<Worker>> MakeWebhookWorker(Dispatcher::Impl& d, const Sink& sink);
StatusOr<std::shared_ptr<Worker>> MakeRedisWorker(Dispatcher::Impl& d, const Sink& sink);

}  // namespace tp
