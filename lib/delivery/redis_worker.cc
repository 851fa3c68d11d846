// A Redis stream sink's worker (worker.h): one pipeline of XADDs at a
// time, in fire order, up to kRedisBatch events; its circuit opens on the
// first failure.

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <chrono>

#include "delivery/redis_client.h"
#include "delivery/worker.h"

namespace tp {
namespace {

// A Redis stream's circuit opens on the first failure; it backs off from
// one second to half a minute.
constexpr Millis kRedisBackoffInitial{1'000};
constexpr Millis kRedisBackoffMax{30'000};
constexpr std::size_t kRedisBatch = 256;

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

StatusOr<std::shared_ptr<Worker>> MakeRedisWorker(Dispatcher::Impl& d, const Sink& sink) {
  auto url = ParseRedisUrl(sink.url);
  if (!url.ok()) return Status::Error("sink " + sink.name + ": " + url.status().message());
  return std::shared_ptr<Worker>(std::make_shared<RedisWorker>(d, sink, std::move(*url)));
}

}  // namespace tp
