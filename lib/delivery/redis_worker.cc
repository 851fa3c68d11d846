// A Redis stream sink's worker (worker.h): one transaction of XADDs at a
// time (MULTI ... EXEC, pipelined), in fire order, up to kRedisBatch
// events; its circuit opens on the first failure.

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
    // In a transaction: Redis refuses a command it cannot run (out of
    // memory, near maxmemory) and runs the ones after it, so a plain
    // pipeline could add later events before one refused, which would go
    // after them, twice. Refused while queued, the whole batch is (EXEC
    // answers EXECABORT), and it goes again, in order.
    std::vector<RedisClient::Command> commands;
    commands.reserve(items.size() + 2);
    commands.push_back({"MULTI"});
    for (const OutboxItem& item : items) {
      RedisClient::Command c = {"XADD", sink_.stream};
      if (sink_.maxlen) {
        c.insert(c.end(), {"MAXLEN", "~", std::to_string(*sink_.maxlen)});
      }
      c.insert(c.end(),
               {"*", "id", item.touchpoint_id, "type", "touchpoint.due", "event", item.event});
      commands.push_back(std::move(c));
    }
    commands.push_back({"EXEC"});
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
    // MULTI's answer, one QUEUED (or the refusal) per XADD, then EXEC's:
    // each XADD's answer, or an error when nothing ran.
    const RedisReply* exec = replies.size() == items.size() + 2 ? &replies.back() : nullptr;
    const std::vector<RedisReply> none;
    const std::vector<RedisReply>& added = exec != nullptr && !exec->error ? exec->elements : none;
    std::size_t ok = 0;
    for (; ok < items.size() && ok < added.size() && !added[ok].error; ++ok) {
      DeliveryResult r;
      r.id = items[ok].id;
      r.touchpoint = items[ok].touchpoint;
      r.kind = DeliveryResult::Kind::kDelivered;
      r.at = now;
      r.attempts = items[ok].attempts + 1;
      r.latency = latency;
      r.history = "added to stream " + sink_.stream + " on " + sink_.name + " as " +
                  added[ok].text + " in " + MsText(latency);
      d_.Add(shared_from_this(), std::move(r));
    }
    // The rest waits, in order, for the next try: nothing was recorded.
    for (std::size_t i = ok; i < items.size(); ++i) Released(items[i].id);
    if (ok < items.size()) {
      const std::string error = !status.ok() ? status.message() : Refusal(replies, added, ok);
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

  // Why the batch's event at `ok` was not added: the first command Redis
  // refused (while queued: the whole transaction was then aborted), else
  // EXEC's error, else that XADD's.
  static std::string Refusal(const std::vector<RedisReply>& replies,
                             const std::vector<RedisReply>& added, std::size_t ok) {
    for (const RedisReply& r : replies) {
      if (r.error && r.text.rfind("EXECABORT", 0) != 0) return "XADD refused: " + r.text;
    }
    if (ok < added.size()) return "XADD refused: " + added[ok].text;
    for (const RedisReply& r : replies) {
      if (r.error) return "refused: " + r.text;
    }
    return "missing replies";
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
