#include "delivery/worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <string_view>

#include "core/text.h"

namespace tp {

namespace asio = boost::asio;

// --- the dispatcher's results ---------------------------------------------------

void Dispatcher::Impl::Add(std::shared_ptr<Worker> worker, DeliveryResult result) {
  // Kept as text by the store (PostgreSQL refuses bytes that are not UTF-8,
  // and NUL, and the dead letters are answered as JSON): a peer's bytes in an error
  // or a history line must not stop every result after them.
  result.error = ValidUtf8(result.error);
  result.history = ValidUtf8(result.history);
  results.push_back(std::move(result));
  result_workers.push_back(std::move(worker));
  // Now, even while results the store could not take wait for the retry:
  // this one need not wait behind them.
  if (flush_posted) return;
  flush_posted = true;
  asio::post(io, [this] { Flush(); });
}

void Dispatcher::Impl::Flush() {
  flush_posted = false;
  if (results.empty()) return;
  // Which results are written; all of them, or none if the store failed.
  std::vector<bool> written(results.size(), false);
  Status s = store.RecordDeliveries(results);
  if (s.ok()) {
    written.assign(results.size(), true);
  } else if (!s.unavailable() && results.size() > 1) {
    // Not the store being away: something in one result it refuses. Each
    // on its own, so that such a result holds up only itself, not every
    // result after it.
    for (std::size_t i = 0; i < results.size(); ++i) {
      Status one = store.RecordDeliveries(std::span<const DeliveryResult>(&results[i], 1));
      written[i] = one.ok();
      if (!one.ok()) s = one;
      if (!one.ok() && one.unavailable()) break;
    }
  }
  // Workers go on once their results are written; and past a result the
  // store refuses, though not while the store is away.
  const bool away = !s.ok() && s.unavailable();
  std::vector<std::string> touched;
  const auto touch = [&touched](const std::string& name) {
    if (std::find(touched.begin(), touched.end(), name) == touched.end()) touched.push_back(name);
  };
  std::size_t kept = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!written[i]) {
      // Kept, and their events stay busy, until they can be written.
      if (!away) touch(result_workers[i]->name());
      if (kept != i) {
        results[kept] = std::move(results[i]);
        result_workers[kept] = std::move(result_workers[i]);
      }
      ++kept;
      continue;
    }
    result_workers[i]->Released(results[i].id);
    if (observer != nullptr) {
      static constexpr std::string_view kOutcomes[] = {"delivered", "retried", "dead_lettered"};
      observer->OnAttempt(result_workers[i]->name(), kOutcomes[static_cast<int>(results[i].kind)],
                          results[i].latency);
    }
    touch(result_workers[i]->name());
  }
  results.resize(kept);
  result_workers.resize(kept);
  if (kept > 0) StoreFailed(s);
  if (kept == 0) stop_retries = 0;
  if (kept > 0 && stopping && stop_retries >= kStopFlushTries) {
    spdlog::error(
        "stopping: {} of deliveries not recorded ({}): their events are sent again by the "
        "daemon that claims them next, or at the next start",
        Plural(static_cast<long long>(kept), "result"), s.message());
    // Not in flight any more: `busy` names their workers, which a reload
    // may have retired (held by these results only).
    for (const DeliveryResult& r : results) busy.erase(r.id);
    results.clear();
    result_workers.clear();
    stop_retries = 0;  // a result that comes later gets its own tries
    return;
  }
  if (kept > 0 && !retry_armed) {
    spdlog::error("recording {} of deliveries: {}; retrying in 1s",
                  Plural(static_cast<long long>(kept), "result"), s.message());
    retry_armed = true;
    flush_timer.expires_after(kStoreRetry);
    flush_timer.async_wait([this](const boost::system::error_code& ec) {
      retry_armed = false;
      if (stopping && !results.empty()) ++stop_retries;
      if (!ec || stopping) Flush();
    });
  }
  // The sink's current worker: the one that attempted may have been replaced.
  for (auto& w : workers) {
    if (std::find(touched.begin(), touched.end(), w->name()) != touched.end()) w->Wake();
  }
}

// --- a worker ------------------------------------------------------------------

void Worker::Wake() {
  if (pump_posted_) return;
  pump_posted_ = true;
  asio::post(d_.io, [self = shared_from_this()] {
    self->pump_posted_ = false;
    self->Pump();
  });
}

void Worker::Released(std::int64_t id) {
  if (d_.busy.erase(id) > 0 && taken_ > 0) --taken_;
  if (stopped_) {
    // Replaced at a reload: the sink's current worker may be waiting for
    // this event (in order, it sends none ahead of it), and an event put
    // back without a result is no result's flush to wake it.
    for (auto& w : d_.workers) {
      if (w.get() != this && w->name() == name()) w->Wake();
    }
  }
  if (taken_ == 0) MaybeLetGo();
}

void Worker::Stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  timer_.cancel(ignored);
  if (d_.stopping) CancelLetGo();  // its session ends with the daemon's
  MaybeLetGo();
}

void Worker::CancelLetGo() {
  boost::system::error_code ignored;
  let_go_timer_.cancel(ignored);
}

void Worker::MaybeLetGo() {
  if (!in_order_ || !(stopped_ || circuit_.open())) return;
  // By the sink's name: a worker that replaced another at a reload shares
  // its lock while the old one's events are in flight. Any worker's events
  // of the name in flight hold it: the stream's claims may include them
  // (a reload having made a webhook a stream), and letting go gives the
  // claims up. A worker of another type of the same name (a reload having
  // made the stream a webhook) delivers nothing in order: it does not.
  const std::string& sink_name = sink_.name;
  const bool in_flight = std::any_of(d_.busy.begin(), d_.busy.end(),
                                     [&](const auto& b) { return b.second->name() == sink_name; });
  const bool delivering = std::any_of(d_.workers.begin(), d_.workers.end(), [&](const auto& w) {
    return w->name() == sink_name && w->sink().type == sink_.type && !w->stopped_ &&
           !w->circuit_.open();
  });
  if (in_flight || delivering) return;
  Status s = d_.store.LetGoOfSink(sink_.name);
  d_.StoreFailed(s);
  // Tried again only while the store is away (as a result's record is):
  // another error would come back each second.
  if (s.ok() || !s.unavailable() || d_.stopping || let_go_armed_) {
    if (!s.ok()) spdlog::warn("sink {}: {}", sink_.name, s.message());
    return;
  }
  spdlog::warn("sink {}: {}; trying again in {}", sink_.name, s.message(), MsText(kStoreRetry));
  let_go_armed_ = true;
  let_go_timer_.expires_after(kStoreRetry);
  let_go_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    self->let_go_armed_ = false;
    if (!ec && !self->d_.stopping) self->MaybeLetGo();
  });
}

void Worker::OutboxRead(const Status& failed, Instant now) {
  if (failed.ok()) {
    if (store_failing_since_) {
      spdlog::info("sink {}: the outbox is read again", sink_.name);
      store_failing_since_.reset();
      store_logged_.reset();
    }
    return;
  }
  d_.StoreFailed(failed);
  if (!store_failing_since_) {
    store_failing_since_ = now;
    store_logged_ = now;
    spdlog::error("sink {}: {}", sink_.name, failed.message());
  } else if (now - *store_logged_ >= kStoreLogEvery) {
    store_logged_ = now;
    spdlog::error("sink {}: {} (failing since {} ago)", sink_.name, failed.message(),
                  MsText(std::chrono::duration_cast<Millis>(now - *store_failing_since_)));
  }
}

void Worker::ArmTimer(Instant now) {
  std::optional<Instant> at;
  if (circuit_.open()) {
    at = circuit_.open_until();
  } else {
    auto next = d_.store.NextDeliveryAfter(sink_.name, now);
    // (Only the claim says the outbox is read again: on a standby this
    // read works where the claim, a write, does not.)
    if (!next.ok()) {
      OutboxRead(next.status(), now);
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

std::vector<OutboxItem> Worker::TakeDue(Instant now, std::size_t max, bool in_order) {
  in_order_ = in_order_ || in_order;
  std::vector<std::int64_t> attempting;
  if (!in_order) {
    attempting.reserve(d_.busy.size());
    for (const auto& [id, worker] : d_.busy) attempting.push_back(id);
  }
  // In order, what is in flight comes back first (a replaced worker's
  // stops this one); else only new ones.
  auto due =
      d_.store.DueDeliveries(sink_.name, now, in_order ? max + taken_ : max, in_order, attempting);
  OutboxRead(due.status(), now);
  if (!due.ok()) return {};
  if (in_order) {
    const bool elsewhere = due->empty() && d_.store.DeliveredElsewhere(sink_.name);
    if (auto line = circuit_.StandBy(elsewhere); !line.empty()) {
      spdlog::info("sink {}: {}", sink_.name, line);
    }
  }
  std::vector<OutboxItem> out;
  for (OutboxItem& item : *due) {
    if (out.size() == max) break;
    const auto [at, inserted] = d_.busy.emplace(item.id, this);
    if (inserted) {
      ++taken_;
      out.push_back(std::move(item));
    } else if (in_order && at->second != this) {
      break;  // attempted still by a worker this one replaced: wait for it
    }
  }
  return out;
}

void Worker::CircuitFailed(Instant now, const std::string& error) {
  if (auto line = circuit_.Failed(now, error); !line.empty()) {
    spdlog::warn("sink {}: {}", sink_.name, line);
  }
  if (taken_ == 0) MaybeLetGo();
}

void Worker::CircuitSucceeded() {
  if (auto line = circuit_.Succeeded(); !line.empty()) {
    spdlog::info("sink {}: {}", sink_.name, line);
  }
}

}  // namespace tp
