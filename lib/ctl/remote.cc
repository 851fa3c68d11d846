#include "ctl/remote.h"

#include <date/tz.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/text.h"
#include "ctl/outcome_table.h"
#include "ctl/remote_call.h"
#include "ctl/table.h"
#include "http/client.h"

namespace tp {

using nlohmann::json;

std::string ErrorOf(const HttpResult& r, const Remote& remote) {
  if (r.status == 401 && remote.token.empty()) {
    return "the daemon refused the request (401): it needs an API token; pass --token-file FILE "
           "or set TOUCHPOINT_TOKEN";
  }
  if (r.status == 401) {
    return "the daemon refused the API token (401): it is not one of those in its "
           "auth.token_file; check --token-file or TOUCHPOINT_TOKEN";
  }
  auto body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return body["error"].get<std::string>();
  }
  return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

StatusOr<std::unique_ptr<HttpClient>> Connect(const Remote& remote) {
  auto client = HttpClient::Create(remote.url);
  if (client.ok()) (*client)->set_bearer_token(remote.token);
  return client;
}

StatusOr<std::string> ResolveToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv("TOUCHPOINT_TOKEN");
    return std::string(env != nullptr ? env : "");
  }
  std::ifstream in(token_file);
  if (!in)
    return Status::Error("cannot read token file " + token_file + ": " + std::strerror(errno));
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    return line.substr(first, last - first + 1);
  }
  return Status::Error("token file " + token_file + " holds no token");
}

Status ShowBuyer(const Remote& remote, const std::string& buyer_id, bool raw, std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  auto answer = (*client)->Request("GET", "/v1/buyers/" + UrlEncode(buyer_id));
  if (!answer.ok()) return answer.status();
  if (answer->status == 404) return Status::Error("unknown buyer '" + buyer_id + "'");
  if (answer->status != 200) return Status::Error(ErrorOf(*answer, remote));
  auto b = json::parse(answer->body, nullptr, false);
  if (!b.is_object()) return Status::Error("the daemon sent something other than JSON");
  if (raw) {
    out << b.dump(2) << '\n';
    return Status::Ok();
  }
  auto str = [](const json& v) { return v.is_string() ? v.get<std::string>() : std::string("-"); };
  // Every time in one zone: the buyer's latest purchase's (the API gives
  // each time with its own purchase's offset, received_at in UTC).
  const json& purchases = b["purchases"];
  const json& touchpoints = b["touchpoints"];
  std::string zone_name = "UTC";
  if (purchases.is_array() && !purchases.empty()) zone_name = str(purchases.back()["timezone"]);
  const Zone* zone = FindZone(zone_name);
  if (zone == nullptr) zone = UtcZone();
  auto when = [&](const json& v) { return DisplayTime(str(v), zone); };

  out << "buyer " << str(b["buyer_id"]) << ": tier " << str(b["tier"]) << ", "
      << (b.value("opted_out", false) ? "opted out" : "opted in") << "; times in " << zone->name()
      << "\n\n";
  Table bought({"PURCHASED", "ORDER", "PRODUCT", "QUANTITY", "AMOUNT", "TIER", "RECEIVED"});
  for (const auto& p : purchases) {
    const json& amount = p["amount"];
    bought.Add({when(p["purchased_at"]), str(p["order_id"]), str(p["product"]),
                std::to_string(p.value("quantity", std::int64_t{0})),
                amount.is_number() ? DisplayAmount(amount.get<double>()) : "-", str(p["tier"]),
                when(p["received_at"])});
  }
  out << Plural(static_cast<long long>(bought.rows()), "purchase");
  if (const auto earlier = b.value("earlier_purchases", std::int64_t{0}); earlier > 0) {
    out << " (the last; " << Plural(static_cast<long long>(earlier), "earlier purchase")
        << " and their touchpoints not shown: touchpointctl export has them)";
  }
  out << "\n";
  bought.Print(out, "  ");

  Table planned({"DUE", "STATUS", "CADENCE/TOPIC", "ORDER", "FIRED OR WHY NOT"});
  for (const auto& t : touchpoints) {
    const std::string status = str(t["status"]);
    planned.Add({when(t["due_at"]), status, str(t["cadence"]) + "/" + str(t["topic"]),
                 str(t["order_id"]),
                 status == "fired" ? when(t["fire_at"]) : DisplayTimesIn(str(t["reason"]), zone)});
  }
  out << "\n" << Plural(static_cast<long long>(planned.rows()), "touchpoint") << "\n";
  planned.Print(out, "  ");
  return Status::Ok();
}

Status ShowOutcomes(const Remote& remote, const OutcomeReportQuery& query, bool raw,
                    std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  std::string target = "/v1/reports/outcomes";
  char sep = '?';
  for (const auto& [key, value] : {std::pair{"from", &query.from}, std::pair{"to", &query.to},
                                   std::pair{"as_of", &query.as_of}, std::pair{"by", &query.by}}) {
    if (value->empty()) continue;
    target += sep + std::string(key) + "=" + UrlEncode(*value);
    sep = '&';
  }
  auto answer = (*client)->Request("GET", target);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return Status::Error(ErrorOf(*answer, remote));
  auto report = nlohmann::ordered_json::parse(answer->body, nullptr, false);
  if (!report.is_object() || !report["rows"].is_array()) {
    return Status::Error("the daemon sent something other than an outcomes report");
  }
  if (raw) {
    out << report.dump(2) << '\n';
  } else {
    PrintOutcomeReport(report, out);
  }
  return Status::Ok();
}

Status ListDeadLetters(const Remote& remote, const std::string& sink, bool raw, std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  std::string after = "0";
  Table table({"ID", "SINK", "TOUCHPOINT", "ATTEMPTS", "DEAD AT", "LAST ERROR"});
  for (;;) {
    std::string target = "/v1/dead-letters?limit=1000&after=" + after;
    if (!sink.empty()) target += "&sink=" + UrlEncode(sink);
    auto answer = (*client)->Request("GET", target);
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return Status::Error(ErrorOf(*answer, remote));
    auto page = json::parse(answer->body, nullptr, false);
    if (!page.is_object() || !page["dead_letters"].is_array()) {
      return Status::Error("the daemon sent something other than a dead letter list");
    }
    for (const auto& d : page["dead_letters"]) {
      if (raw) {
        out << d.dump() << '\n';
        continue;
      }
      table.Add({std::to_string(d.value("id", std::int64_t{0})), d.value("sink", ""),
                 d.value("touchpoint_id", ""), std::to_string(d.value("attempts", 0)),
                 DisplayTime(d.value("dead_at", ""), UtcZone()), d.value("last_error", "")});
    }
    if (!page["next_after"].is_number_integer()) break;
    after = std::to_string(page["next_after"].get<std::int64_t>());
  }
  if (!raw) {
    if (table.rows() > 0) table.Print(out);
    out << Plural(static_cast<long long>(table.rows()), "dead letter") << '\n';
  }
  return Status::Ok();
}

Status ReplayDeadLetters(const Remote& remote, const std::vector<std::string>& ids, bool all,
                         const std::string& sink, std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  std::int64_t replayed = 0;
  std::vector<std::string> unknown, waiting;
  if (all) {
    const json body = sink.empty() ? json{{"all", true}} : json{{"sink", sink}};
    auto answer = (*client)->Request("POST", "/v1/dead-letters/replay", body.dump());
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return Status::Error(ErrorOf(*answer, remote));
    replayed = json::parse(answer->body, nullptr, false).value("replayed", 0);
  }
  for (const std::string& id : ids) {
    auto answer = (*client)->Request("POST", "/v1/dead-letters/" + UrlEncode(id) + "/replay");
    if (!answer.ok()) return answer.status();
    if (answer->status == 404) {
      unknown.push_back(id);
      continue;
    }
    if (answer->status != 200) return Status::Error(ErrorOf(*answer, remote));
    const json body = json::parse(answer->body, nullptr, false);
    replayed += body.value("replayed", 0);
    if (body.value("waiting", 0) > 0) waiting.push_back(id);
  }
  auto list = [](const std::vector<std::string>& named) {
    std::string text;
    for (const auto& id : named) text += (text.empty() ? "" : ", ") + id;
    return text;
  };
  out << "replayed " << Plural(replayed, "dead letter") << '\n';
  if (!waiting.empty()) out << "waiting in their outbox already: " << list(waiting) << '\n';
  if (!unknown.empty()) return Status::Error("no dead letter with id " + list(unknown));
  return Status::Ok();
}

}  // namespace tp
