#include "ctl/remote.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>

#include "http/client.h"
#include "simulate/csv.h"

namespace tp {
namespace {

using nlohmann::json;

constexpr std::string_view kColumns[] = {"order_id", "buyer_id",     "product", "quantity",
                                         "amount",   "purchased_at", "timezone"};

// A CSV row as the API's JSON item. Numbers that do not parse are sent as
// text, so the daemon's answer names the field: one set of messages.
json RowToItem(const std::vector<std::string>& fields, const std::vector<int>& index) {
  json item = json::object();
  for (std::size_t c = 0; c < std::size(kColumns); ++c) {
    if (index[c] < 0 || static_cast<std::size_t>(index[c]) >= fields.size()) continue;
    const std::string& v = fields[static_cast<std::size_t>(index[c])];
    const std::string key(kColumns[c]);
    if (key == "timezone" && v.empty()) continue;
    if (key == "quantity") {
      std::int64_t q = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), q);
      item[key] = (ec == std::errc() && ptr == v.data() + v.size()) ? json(q) : json(v);
    } else if (key == "amount") {
      char* end = nullptr;
      const double a = std::strtod(v.c_str(), &end);
      item[key] = (!v.empty() && end == v.c_str() + v.size()) ? json(a) : json(v);
    } else {
      item[key] = v;
    }
  }
  return item;
}

std::string ErrorOf(const HttpResult& r) {
  if (r.status == 401) {
    return "the daemon refused the request (401): it needs an API token; pass --token-file FILE "
           "or set TOUCHPOINT_TOKEN";
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

class Progress {
 public:
  Progress(std::ostream& out, bool bar, std::uintmax_t total_bytes)
      : out_(out), bar_(bar), total_(total_bytes) {}

  void Update(std::uintmax_t bytes, const ImportResult& r, bool final = false) {
    const double fraction = total_ > 0 ? std::min(1.0, double(bytes) / double(total_)) : 1.0;
    if (bar_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(fraction * kWidth);
      out_ << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
           << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << std::setw(3)
           << static_cast<int>(fraction * 100) << "%  " << r.lines << " lines, " << r.accepted
           << " accepted, " << r.duplicates << " duplicates, " << r.rejected.size() << " rejected"
           << std::flush;
      if (final) out_ << '\n';
      return;
    }
    // Plain lines: one about every 10% and at the end.
    const int decile = static_cast<int>(fraction * 10);
    if (!final && decile <= last_decile_) return;
    last_decile_ = decile;
    out_ << "import: " << r.lines << " lines read (" << static_cast<int>(fraction * 100) << "%), "
         << r.accepted << " accepted, " << r.duplicates << " duplicates, " << r.rejected.size()
         << " rejected\n";
  }

 private:
  std::ostream& out_;
  bool bar_;
  std::uintmax_t total_;
  int last_decile_ = 0;
};

struct PendingRow {
  std::size_t line;
  json item;
};

}  // namespace

Status Import(const ImportOptions& options, ImportResult& result, std::ostream& progress_out) {
  std::ifstream in(options.path, std::ios::binary);
  if (!in) return Status::Error("cannot read " + options.path + ": " + std::strerror(errno));
  std::error_code size_error;
  const auto total = std::filesystem::file_size(options.path, size_error);
  auto client = Connect(options.remote);
  if (!client.ok()) return client.status();

  std::string line;
  std::vector<std::string> fields;
  if (!std::getline(in, line)) return Status::Error(options.path + ": empty file (no header)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (auto e = SplitCsvLine(line, fields)) return Status::Error(options.path + ":1: " + *e);
  std::vector<int> index(std::size(kColumns), -1);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    bool known = false;
    for (std::size_t c = 0; c < std::size(kColumns); ++c) {
      if (fields[i] == kColumns[c]) {
        index[c] = static_cast<int>(i);
        known = true;
      }
    }
    if (!known) {
      return Status::Error(options.path + ":1: unknown column '" + fields[i] +
                           "' (expected order_id,buyer_id,product,quantity,amount,"
                           "purchased_at,timezone)");
    }
  }

  Progress progress(progress_out, options.progress_bar, size_error ? 0 : total);
  auto reject = [&](std::size_t line_no, const std::string& what) {
    result.rejected.push_back(options.path + ":" + std::to_string(line_no) + ": " + what);
  };

  // Sends `rows`; on a 400/409 naming a row, rejects it and sends the rest.
  auto send = [&](std::vector<PendingRow>& rows) -> Status {
    while (!rows.empty()) {
      json items = json::array();
      for (const PendingRow& r : rows) items.push_back(r.item);
      auto answer = (*client)->Request("POST", "/v1/purchases", items.dump());
      if (!answer.ok()) return answer.status();
      if (answer->status == 200) {
        auto body = json::parse(answer->body, nullptr, false);
        result.accepted += body.value("accepted", std::size_t{0});
        result.duplicates += body.value("duplicates", std::size_t{0});
        rows.clear();
        return Status::Ok();
      }
      auto body = json::parse(answer->body, nullptr, false);
      const bool names_row = (answer->status == 400 || answer->status == 409) && body.is_object() &&
                             body.contains("index") && body["index"].is_number_unsigned() &&
                             body["index"].get<std::size_t>() < rows.size();
      if (!names_row) {
        return Status::Error("the daemon refused a batch: " + ErrorOf(*answer));
      }
      const auto bad = body["index"].get<std::size_t>();
      std::string what = ErrorOf(*answer);
      if (body.contains("field") && body["field"].is_string()) {
        what = "field '" + body["field"].get<std::string>() + "': " + what;
      }
      reject(rows[bad].line, what);
      rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(bad));
    }
    return Status::Ok();
  };

  std::vector<PendingRow> batch;
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ++result.lines;
    if (auto e = SplitCsvLine(line, fields)) {
      reject(line_no, *e);
      continue;
    }
    batch.push_back({line_no, RowToItem(fields, index)});
    if (batch.size() >= options.batch) {
      if (Status s = send(batch); !s.ok()) {
        return Status::Error(s.message() + " (after line " + std::to_string(line_no - 1) + ")");
      }
      progress.Update(static_cast<std::uintmax_t>(in.tellg()), result);
    }
  }
  if (Status s = send(batch); !s.ok()) {
    return Status::Error(s.message() + " (after line " + std::to_string(line_no) + ")");
  }
  progress.Update(total, result, true);
  return Status::Ok();
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
  if (answer->status != 200) return Status::Error(ErrorOf(*answer));
  auto b = json::parse(answer->body, nullptr, false);
  if (!b.is_object()) return Status::Error("the daemon sent something other than JSON");
  if (raw) {
    out << b.dump(2) << '\n';
    return Status::Ok();
  }
  auto str = [](const json& v) { return v.is_string() ? v.get<std::string>() : std::string("-"); };
  auto when = [&](const json& v) {
    std::string s = str(v);
    if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
    return s;
  };
  out << "buyer " << str(b["buyer_id"]) << ": tier " << str(b["tier"]) << ", "
      << (b.value("opted_out", false) ? "opted out" : "opted in") << "\n\n";
  out << "purchases (" << b["purchases"].size() << ")\n";
  for (const auto& p : b["purchases"]) {
    out << "  " << std::left << std::setw(26) << when(p["purchased_at"]) << std::setw(16)
        << str(p["order_id"]) << str(p["product"]) << " x" << p.value("quantity", 0) << "  "
        << p.value("amount", 0.0) << "  tier " << str(p["tier"]) << '\n';
  }
  out << "\ntouchpoints (" << b["touchpoints"].size() << ")\n";
  for (const auto& t : b["touchpoints"]) {
    const std::string status = str(t["status"]);
    out << "  " << std::left << std::setw(26) << when(t["due_at"]) << std::setw(11) << status
        << std::setw(34) << (str(t["cadence"]) + "/" + str(t["topic"])) << std::setw(16)
        << str(t["order_id"]);
    if (status == "fired") {
      out << "fired " << when(t["fire_at"]);
    } else {
      out << str(t["reason"]);
    }
    out << '\n';
  }
  return Status::Ok();
}

Status ListDeadLetters(const Remote& remote, const std::string& sink, bool raw, std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  std::string after = "0";
  std::size_t total = 0;
  if (!raw) {
    out << std::left << std::setw(8) << "ID" << std::setw(14) << "SINK" << std::setw(38)
        << "TOUCHPOINT" << std::setw(10) << "ATTEMPTS" << std::setw(26) << "DEAD AT"
        << "LAST ERROR\n";
  }
  for (;;) {
    std::string target = "/v1/dead-letters?limit=1000&after=" + after;
    if (!sink.empty()) target += "&sink=" + UrlEncode(sink);
    auto answer = (*client)->Request("GET", target);
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return Status::Error(ErrorOf(*answer));
    auto page = json::parse(answer->body, nullptr, false);
    if (!page.is_object() || !page["dead_letters"].is_array()) {
      return Status::Error("the daemon sent something other than a dead letter list");
    }
    for (const auto& d : page["dead_letters"]) {
      ++total;
      if (raw) {
        out << d.dump() << '\n';
        continue;
      }
      out << std::left << std::setw(8) << d.value("id", 0) << std::setw(14) << d.value("sink", "")
          << std::setw(38) << d.value("touchpoint_id", "") << std::setw(10)
          << d.value("attempts", 0) << std::setw(26) << d.value("dead_at", "")
          << d.value("last_error", "") << '\n';
    }
    if (!page["next_after"].is_number_integer()) break;
    after = std::to_string(page["next_after"].get<std::int64_t>());
  }
  if (!raw) out << total << " dead letter" << (total == 1 ? "" : "s") << '\n';
  return Status::Ok();
}

Status ReplayDeadLetters(const Remote& remote, const std::vector<std::string>& ids, bool all,
                         const std::string& sink, std::ostream& out) {
  auto client = Connect(remote);
  if (!client.ok()) return client.status();
  std::int64_t replayed = 0;
  std::vector<std::string> unknown;
  if (all) {
    const json body = sink.empty() ? json::object() : json{{"sink", sink}};
    auto answer = (*client)->Request("POST", "/v1/dead-letters/replay", body.dump());
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return Status::Error(ErrorOf(*answer));
    replayed = json::parse(answer->body, nullptr, false).value("replayed", 0);
  }
  for (const std::string& id : ids) {
    auto answer = (*client)->Request("POST", "/v1/dead-letters/" + UrlEncode(id) + "/replay");
    if (!answer.ok()) return answer.status();
    if (answer->status == 404) {
      unknown.push_back(id);
      continue;
    }
    if (answer->status != 200) return Status::Error(ErrorOf(*answer));
    replayed += json::parse(answer->body, nullptr, false).value("replayed", 0);
  }
  out << "replayed " << replayed << " dead letter" << (replayed == 1 ? "" : "s") << '\n';
  if (!unknown.empty()) {
    std::string list;
    for (const auto& id : unknown) list += (list.empty() ? "" : ", ") + id;
    return Status::Error("no dead letter with id " + list);
  }
  return Status::Ok();
}

}  // namespace tp
