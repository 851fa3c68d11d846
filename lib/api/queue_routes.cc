#include "api/queue_routes.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
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
    if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > kMaxVisibilityS) {
      return FieldError(400,
                        "visibility_s must be a number of seconds, more than 0 and at most 43200",
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
                               HttpRespond respond) { respond(Ack(queue, body)); }));
}

bool QueueRoutes::IsQueue(std::string_view name) const {
  for (const Sink& s : context_.rules->sinks) {
    if (s.type == Sink::Type::kQueue && s.name == name) return true;
  }
  return false;
}

void QueueRoutes::Lease(const std::string& queue, const std::string& body, HttpRespond respond) {
  int max = kDefaultLeaseMax;
  Millis visibility(static_cast<std::int64_t>(kDefaultVisibilityS * 1000));
  if (auto bad = ParseLease(body, max, visibility)) return respond(std::move(*bad));
  auto leased = queues_.TakeLease(queue, max, visibility, context_.clock.Now());
  if (!leased.ok()) return respond(context_.store_failed(leased.status(), "cannot lease"));
  if (leased->empty()) return respond(LeaseResponse(*leased));
  // The answer is written on the events maker's thread too, then sent from the
  // loop; the work guard keeps the loop running (at a stop too) until then.
  events_.Fill(std::move(*leased), queue,
               [work = boost::asio::make_work_guard(io_),
                respond = std::move(respond)](StatusOr<std::vector<LeasedRow>> rows) mutable {
                 HttpResponse answer =
                     rows.ok() ? LeaseResponse(*rows) : ErrorResponse(500, rows.status().message());
                 boost::asio::post(work.get_executor(), [respond = std::move(respond),
                                                         answer = std::move(answer)]() mutable {
                   respond(std::move(answer));
                 });
                 work.reset();
               });
}

HttpResponse QueueRoutes::Ack(const std::string& queue, const std::string& body) {
  RequestJson req;
  if (auto bad = ParseObject(body, req, {"receipts"})) return *bad;
  auto it = req.find("receipts");
  if (it == req.end() || !it->is_array()) {
    return FieldError(400, "receipts must be an array of strings", "receipts");
  }
  if (it->size() > kMaxReceipts) {
    return FieldError(400, "at most " + std::to_string(kMaxReceipts) + " receipts per request",
                      "receipts");
  }
  std::vector<std::string> receipts;
  for (const RequestJson& r : *it) {
    if (!r.is_string()) return FieldError(400, "receipts must be an array of strings", "receipts");
    receipts.push_back(r.get<std::string>());
  }
  auto acked = queues_.Ack(queue, receipts, context_.clock.Now());
  if (!acked.ok()) return context_.store_failed(acked.status(), "cannot ack");
  return JsonResponse(200, Json{{"acked", *acked}});
}

}  // namespace tp::api
