// The end-to-end benchmark's load (docs/benchmarks.md): purchase bodies
// posted from several keep-alive connections, a watch on how long the
// daemon's loop is held, queue consumers leasing and acking, and a webhook
// receiver.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>
#include <unordered_set>

#include "harness.h"
#include "http/server.h"

namespace tp::e2e {

struct Purchase {
  std::int64_t buyer = 0;
  tp::Instant at;
};

// JSON array bodies of `batch` purchases each: order o<i> by buyer b<buyer>.
inline std::vector<std::string> Bodies(const std::vector<Purchase>& purchases, std::size_t batch) {
  std::vector<std::string> bodies;
  for (std::size_t start = 0; start < purchases.size(); start += batch) {
    std::string body = "[";
    const std::size_t end = std::min(purchases.size(), start + batch);
    for (std::size_t i = start; i < end; ++i) {
      if (i > start) body += ',';
      body += R"({"order_id":"o)" + std::to_string(i) + R"(","buyer_id":"b)" +
              std::to_string(purchases[i].buyer) +
              R"(","product":"daily","quantity":2,"amount":240,"purchased_at":")" +
              Rfc3339(purchases[i].at) + "\"}";
    }
    body += ']';
    bodies.push_back(std::move(body));
  }
  return bodies;
}

struct IngestResult {
  double seconds = 0;
  std::int64_t purchases = 0;
  std::int64_t touchpoints = 0;
};

// POSTs every body from `connections` keep-alive connections at once.
inline IngestResult Post(const Daemon& daemon, const std::vector<std::string>& bodies,
                         int connections = 2, const char* target = "/v1/purchases") {
  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> purchases{0}, touchpoints{0};
  std::mutex error_mutex;
  std::string error;
  const auto started = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      auto client = daemon.Client();
      for (std::size_t i = next++; i < bodies.size(); i = next++) {
        auto r = client->Request("POST", target, bodies[i]);
        if (!r.ok() || r->status != 200) {
          std::lock_guard lock(error_mutex);
          error = r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 300)
                         : r.status().message();
          return;
        }
        const json answer = json::parse(r->body);
        purchases += answer.at("accepted").get<std::int64_t>();
        touchpoints += answer.value("touchpoints_planned", std::int64_t{0});
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!error.empty()) Fail("ingest failed: " + error);
  return {Seconds(Steady::now() - started), purchases, touchpoints};
}

// Asks `daemon` for /healthz back to back (10 ms apart) on a thread of its
// own while it lives: the slowest answer is about how long the daemon's
// loop was held meanwhile.
class StallWatch {
 public:
  explicit StallWatch(const Daemon& daemon)
      : thread_([this, client = daemon.Client()] {
          while (!stop_) {
            const auto asked = Steady::now();
            auto r = client->Request("GET", "/healthz", "");
            const double ms = Seconds(Steady::now() - asked) * 1000;
            if (!r.ok()) Fail("/healthz failed: " + r.status().message());
            max_ms_ = std::max(max_ms_.load(), ms);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  ~StallWatch() { Stop(); }
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

  // Stops asking; the slowest answer, in ms.
  double Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return max_ms_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<double> max_ms_{0};
  std::thread thread_;
};

// How consuming went: each ack's answer (when, and how many were acked by
// then, in order), and the leases that found nothing.
struct Consumed {
  std::vector<std::pair<Steady::time_point, std::int64_t>> acks;
  std::int64_t empty_leases = 0;

  // "50% acked at 1.20 s, 90% at ..., all at ...; 812 empty leases": from
  // `from` (the first due time).
  std::string Describe(Steady::time_point from) const {
    if (acks.empty()) return "nothing acked";
    const std::int64_t all = acks.back().second;
    const auto at = [&](double share) {
      const auto want = static_cast<std::int64_t>(share * static_cast<double>(all));
      auto it =
          std::find_if(acks.begin(), acks.end(), [&](const auto& a) { return a.second >= want; });
      char text[32];
      std::snprintf(text, sizeof text, "%.3f",
                    std::chrono::duration<double>(it->first - from).count());
      return std::string(text);
    };
    return "50% acked at " + at(0.5) + " s, 90% at " + at(0.9) + ", 99% at " + at(0.99) +
           ", all at " + at(1.0) + "; " + std::to_string(empty_leases) + " empty leases";
  }
};

// Leases and acks from `queue` until `expected` messages came; calls
// `on_message(text, received_at_ms)` for each (under a lock), with the
// message's text from its event on. Returns when the
// last ack was answered; `consumed`, if given, gets how it went.
// With several daemons, consumer c leases from daemons[c % size].
template <typename OnMessage>
inline Steady::time_point Consume(const std::vector<const Daemon*>& daemons, std::int64_t expected,
                                  int consumers, Steady::duration idle_poll, OnMessage on_message,
                                  Consumed* consumed = nullptr) {
  std::atomic<std::int64_t> received{0};
  std::mutex mutex;
  Steady::time_point last_ack{};
  std::string error;
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      auto client = daemons[static_cast<std::size_t>(c) % daemons.size()]->Client();
      const auto deadline = Steady::now() + std::chrono::minutes(10);
      while (received < expected && Steady::now() < deadline) {
        auto r = client->Request("POST", "/v1/queues/outbox/lease",
                                 R"({"max":1000,"visibility_s":600})");
        const double at = NowMs();
        if (!r.ok() || r->status != 200) {
          std::lock_guard lock(mutex);
          error = r.ok() ? r->body : r.status().message();
          return;
        }
        // The daemon writes {"receipt":"R","deliveries":N,"event":{...}} per
        // message; scanning for the receipts keeps this process light, so the
        // figure is the daemon's, not this parser's.
        static constexpr std::string_view kReceipt = R"({"receipt":")";
        std::string receipts = R"({"receipts":[)";
        std::int64_t count = 0;
        {
          std::lock_guard lock(mutex);
          for (auto at_receipt = r->body.find(kReceipt); at_receipt != std::string::npos;) {
            const auto start = at_receipt + kReceipt.size();
            const auto end = r->body.find('"', start);
            const auto next = r->body.find(kReceipt, end);
            if (count > 0) receipts += ',';
            receipts += '"';
            receipts.append(r->body, start, end - start);
            receipts += '"';
            on_message(std::string_view(r->body).substr(
                           end, next == std::string::npos ? std::string::npos : next - end),
                       at);
            ++count;
            at_receipt = next;
          }
        }
        if (count == 0) {
          if (consumed != nullptr) {
            std::lock_guard lock(mutex);
            ++consumed->empty_leases;
          }
          std::this_thread::sleep_for(idle_poll);
          continue;
        }
        receipts += "]}";
        auto a = client->Request("POST", "/v1/queues/outbox/ack", receipts);
        if (!a.ok() || a->status != 200 ||
            json::parse(a->body).at("acked").get<std::int64_t>() != count) {
          std::lock_guard lock(mutex);
          error = a.ok() ? a->body : a.status().message();
          return;
        }
        std::lock_guard lock(mutex);
        received += count;
        last_ack = std::max(last_ack, Steady::now());
        if (consumed != nullptr) consumed->acks.emplace_back(last_ack, received.load());
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!error.empty()) Fail("consumer failed: " + error);
  if (received < expected) {
    Fail("consumer got " + std::to_string(received.load()) + " of " + std::to_string(expected));
  }
  return last_ack;
}
template <typename OnMessage>
inline Steady::time_point Consume(const Daemon& daemon, std::int64_t expected, int consumers,
                                  Steady::duration idle_poll, OnMessage on_message,
                                  Consumed* consumed = nullptr) {
  return Consume(std::vector<const Daemon*>{&daemon}, expected, consumers, idle_poll,
                 std::move(on_message), consumed);
}

// A webhook receiver on loopback that answers 200 at once, on its own thread.
class Receiver {
 public:
  Receiver() : server_(io_, tp::HttpLimits{}) {
    if (tp::Status s = server_.Listen("127.0.0.1:0"); !s.ok()) Fail(s.message());
    server_.Serve([this](tp::HttpRequest request, tp::HttpRespond respond) {
      Handle(request);
      respond({200, "", "text/plain"});
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Receiver() {
    server_.Stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::string url() const { return "http://" + server_.LocalAddress() + "/hook"; }
  std::int64_t requests() const { return requests_; }
  std::size_t unique() {
    std::lock_guard lock(mutex_);
    return ids_.size();
  }
  Steady::time_point last() {
    std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  void Handle(const tp::HttpRequest& request) {
    ++requests_;
    const auto at = request.body.find(R"("id":")");
    std::string id = at == std::string::npos ? "" : request.body.substr(at + 6, 34);
    std::lock_guard lock(mutex_);
    ids_.insert(std::move(id));
    last_ = Steady::now();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  tp::HttpServer server_;
  std::thread thread_;
  std::atomic<std::int64_t> requests_{0};
  std::mutex mutex_;
  std::unordered_set<std::string> ids_;
  Steady::time_point last_{};
};

}  // namespace tp::e2e
