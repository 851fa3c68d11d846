#include "api/queue_routes.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <vector>

#include "api/http_json.h"

namespace tp::api {
namespace {

// {"messages": [{receipt, deliveries, event}]}, events as made.
HttpResponse LeaseResponse(const std::vector<LeasedRow>& leased) {
  std::string out = R"({"messages":[)";
  std::size_t size = out.size() + 2;
  for (const LeasedRow& r : leased) size += r.message.receipt.size() + r.message.event.size() + 64;
  out.reserve(size);
  for (std::size_t i = 0; i < leased.size(); ++i) {
    const LeasedMessage& m = leased[i].message;
    if (i > 0) out += ',';
    // A receipt is digits, a dot and hex: nothing to escape.
    out += R"({"receipt":")";
    out += m.receipt;
    out += R"(","deliveries":)";
    out += std::to_string(m.deliveries);
    out += R"(,"event":)";
    out += m.event;
    out += '}';
  }
  out += "]}";
  return HttpResponse{200, std::move(out)};
}

// The lease request's fields, or the 400 that says what is wrong.
std::optional<HttpResponse> ParseLease(const std::string& body, int& max, Millis& visibility) {
  RequestJson req;
  if (auto bad = ParseObject(body, req, {"max", "visibility_s"})) return bad;
  if (auto it = req.find("max"); it != req.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        it->get<std::int64_t>() > kMaxLeaseMax) {
      return FieldError(400, "max must be an integer from 1 to " + std::to_string(kMaxLeaseMax),
                        "max");
    }
    max = it->get<int>();
  }
  if (auto it = req.find("visibility_s"); it != req.end()) {
    // From a millisecond: the store's unit, and less would be no time at all.
    if (!it->is_number() || !(it->get<double>() >= 0.001) || it->get<double>() > kMaxVisibilityS) {
      return FieldError(400, "visibility_s must be a number of seconds, from 0.001 to 43200",
                        "visibility_s");
    }
    visibility = Millis(static_cast<std::int64_t>(it->get<double>() * 1000));
  }
  return std::nullopt;
}

}  // namespace

void QueueRoutes::AddTo(Router& router) {
  auto with_queue = [this](auto then) {
    return [this, then](const HttpRequest& req, const RouteParams& params, HttpRespond respond) {
      auto queue = PercentDecode(params[0]);
      if (!queue || !IsQueue(*queue)) {
        return respond(ErrorResponse(404, "unknown queue '" + std::string(params[0]) + "'"));
      }
      then(*queue, req.body, std::move(respond));
    };
  };
  router.Add("POST", "/v1/queues/{queue}/lease",
             with_queue([this](const std::string& queue, const std::string& body,
                               HttpRespond respond) { Lease(queue, body, std::move(respond)); }));
  router.Add("POST", "/v1/queues/{queue}/ack",
             with_queue([this](const std::string& queue, const std::string& body,
                               HttpRespond respond) { Ack(queue, body, std::move(respond)); }));
}

bool QueueRoutes::IsQueue(std::string_view name) const {
  for (const Sink& s : context_.rules->sinks) {
    if (s.type == Sink::Type::kQueue && s.name == name) return true;
  }
  return false;
}

template <typename T, typename Make>
std::function<void(StatusOr<T>)> QueueRoutes::AnswerOnLoop(HttpRespond respond, std::string what,
                                                           Make make) {
  return [this, work = boost::asio::make_work_guard(io_), respond = std::move(respond),
          what = std::move(what), make = std::move(make)](StatusOr<T> result) mutable {
    std::optional<HttpResponse> answer;
    std::optional<Status> failed;
    if (result.ok()) {
      answer = make(*result);
    } else {
      failed = result.status();
    }
    boost::asio::post(work.get_executor(),
                      [this, respond = std::move(respond), answer = std::move(answer),
                       failed = std::move(failed), what]() mutable {
                        respond(answer ? std::move(*answer) : context_.store_failed(*failed, what));
                      });
    work.reset();
  };
}

void QueueRoutes::Lease(const std::string& queue, const std::string& body, HttpRespond respond) {
  int max = kDefaultLeaseMax;
  Millis visibility(static_cast<std::int64_t>(kDefaultVisibilityS * 1000));
  if (auto bad = ParseLease(body, max, visibility)) return respond(std::move(*bad));
  if (jobs_ != nullptr) {
    return jobs_->Lease(
        queue, max, visibility, context_.clock.Now(),
        AnswerOnLoop<std::vector<LeasedRow>>(
            std::move(respond), "cannot lease",
            [](const std::vector<LeasedRow>& rows) { return LeaseResponse(rows); }));
  }
  auto leased = queues_.TakeLease(queue, max, visibility, context_.clock.Now());
  if (!leased.ok()) return respond(context_.store_failed(leased.status(), "cannot lease"));
  if (leased->empty()) return respond(LeaseResponse(*leased));
  // The answer is written on the events maker's thread too, then sent from
  // the loop.
  events_.Fill(std::move(*leased), queue,
               AnswerOnLoop<std::vector<LeasedRow>>(
                   std::move(respond), "cannot make the leased messages' events",
                   [](const std::vector<LeasedRow>& rows) { return LeaseResponse(rows); }));
}

void QueueRoutes::Ack(const std::string& queue, const std::string& body, HttpRespond respond) {
  RequestJson req;
  if (auto bad = ParseObject(body, req, {"receipts"})) return respond(std::move(*bad));
  auto it = req.find("receipts");
  if (it == req.end() || !it->is_array()) {
    return respond(FieldError(400, "receipts must be an array of strings", "receipts"));
  }
  if (it->size() > kMaxReceipts) {
    return respond(FieldError(
        400, "at most " + std::to_string(kMaxReceipts) + " receipts per request", "receipts"));
  }
  std::vector<std::string> receipts;
  for (const RequestJson& r : *it) {
    if (!r.is_string()) {
      return respond(FieldError(400, "receipts must be an array of strings", "receipts"));
    }
    receipts.push_back(r.get<std::string>());
  }
  const auto answer = [](int acked) { return JsonResponse(200, Json{{"acked", acked}}); };
  if (jobs_ != nullptr) {
    return jobs_->Ack(queue, std::move(receipts), context_.clock.Now(),
                      AnswerOnLoop<int>(std::move(respond), "cannot ack", answer));
  }
  auto acked = queues_.Ack(queue, receipts, context_.clock.Now());
  if (!acked.ok()) return respond(context_.store_failed(acked.status(), "cannot ack"));
  respond(answer(*acked));
}

}  // namespace tp::api
