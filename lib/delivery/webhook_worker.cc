// A webhook sink's worker (worker.h): up to `concurrency` signed POSTs at
// once, each result judged (delivered, retried later, dead-lettered), its
// circuit opening after kCircuitThreshold failures in a row.

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/text.h"
#include "delivery/retry.h"
#include "delivery/signature.h"
#include "delivery/worker.h"
#include "http/async_client.h"

namespace tp {
namespace {

// Consecutive failed attempts that open a webhook's circuit.
constexpr int kCircuitThreshold = 5;

std::string UtcText(Instant at) { return FormatRfc3339(at, UtcZone()); }

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

}  // namespace

StatusOr<std::shared_ptr<Worker>> MakeWebhookWorker(Dispatcher::Impl& d, const Sink& sink) {
  auto url = ParseHttpUrl(sink.url);
  if (!url.ok()) return Status::Error("sink " + sink.name + ": " + url.status().message());
  AsyncHttpClientOptions options;
  options.timeout = sink.timeout;
  options.ca_pem = sink.ca_pem;
  options.tls_verify = sink.tls_verify;
  options.user_agent = "touchpoint-webhooks";
  auto client = AsyncHttpClient::Create(d.io, *url, options);
  if (!client.ok()) return Status::Error("sink " + sink.name + ": " + client.status().message());
  if (!sink.tls_verify) {
    spdlog::warn("sink {}: TLS certificates are not verified (tls_verify: false)", sink.name);
  }
  return std::shared_ptr<Worker>(std::make_shared<WebhookWorker>(d, sink, std::move(*client)));
}

}  // namespace tp
