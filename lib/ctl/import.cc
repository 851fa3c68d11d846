// touchpointctl import: a CSV streamed into the daemon's API in batches,
// with the rows it refuses reported by line and the batches it cannot take
// for now sent again (ctl/remote.h).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "api/v1_gate.h"
#include "core/json_parse.h"
#include "core/text.h"
#include "ctl/remote.h"
#include "ctl/remote_call.h"
#include "http/client.h"
#include "simulate/csv.h"

namespace tp {
namespace {

using nlohmann::json;

constexpr std::string_view kPurchaseColumns[] = {"order_id", "buyer_id",  "product",
                                                 "quantity", "amount",    "purchased_at",
                                                 "timezone", "attributes"};
constexpr std::string_view kEventColumns[] = {"event_id", "buyer_id", "type", "at",
                                              "touchpoint_id"};

std::span<const std::string_view> ColumnsOf(ImportOptions::Kind kind) {
  if (kind == ImportOptions::Kind::kEvents) return kEventColumns;
  return kPurchaseColumns;
}

// A CSV row as the API's JSON item. Numbers that do not parse are sent as
// text, so the daemon's answer names the field: one set of messages.
json RowToItem(const std::vector<std::string>& fields, const std::vector<int>& index,
               std::span<const std::string_view> columns) {
  json item = json::object();
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (index[c] < 0 || static_cast<std::size_t>(index[c]) >= fields.size()) continue;
    const std::string& v = fields[static_cast<std::size_t>(index[c])];
    const std::string key(columns[c]);
    // Optional columns: blank is absent.
    if ((key == "timezone" || key == "touchpoint_id" || key == "attributes") && v.empty()) {
      continue;
    }
    if (key == "quantity") {
      std::int64_t q = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), q);
      item[key] = (ec == std::errc() && ptr == v.data() + v.size()) ? json(q) : json(v);
    } else if (key == "amount") {
      // Out of range (1e400 is inf here) goes as text too: JSON has no inf.
      char* end = nullptr;
      const double a = std::strtod(v.c_str(), &end);
      const bool number = !v.empty() && end == v.c_str() + v.size() && std::isfinite(a);
      item[key] = number ? json(a) : json(v);
    } else if (key == "attributes") {
      // A JSON object goes as one; anything else as text, for the daemon
      // to refuse by name.
      ParsedJson parsed = ParseJson(v);
      item[key] = parsed.error ? json(v) : std::move(parsed.value);
    } else {
      item[key] = v;
    }
  }
  return item;
}

// The values a JSON document holds, as the daemon counts them against
// kMaxJsonValues: every number, string, array and object (keys not).
std::size_t ValuesOf(const json& j) {
  std::size_t n = 1;
  if (j.is_structured()) {
    for (const json& v : j) n += ValuesOf(v);
  }
  return n;
}

// The import's progress: on a terminal one line redrawn in place, fitted to
// its width; otherwise a line about every 10% and one at the end.
class Progress {
 public:
  Progress(std::ostream& out, int terminal_width, std::uintmax_t total_bytes)
      : out_(out), width_(terminal_width), total_(total_bytes) {}

  void Update(std::uintmax_t bytes, const ImportResult& r, bool final = false) {
    const double fraction = total_ > 0 ? std::min(1.0, double(bytes) / double(total_)) : 1.0;
    const int percent = static_cast<int>(fraction * 100);
    const std::string counts = Plural(static_cast<long long>(r.lines), "line") + ", " +
                               std::to_string(r.accepted) + " accepted, " +
                               Plural(static_cast<long long>(r.duplicates), "duplicate") + ", " +
                               std::to_string(r.rejected.size()) + " rejected";
    if (width_ > 0) {
      // The last column stays empty: writing it makes some terminals wrap.
      const std::size_t room = static_cast<std::size_t>(width_) - 1;
      std::string text = std::to_string(percent) + "%  " + counts;
      if (text.size() + 8 <= room) {
        const std::size_t bar = std::min<std::size_t>(30, room - text.size() - 4);
        const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(bar));
        text = "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "] " + text;
      }
      if (text.size() > room) text.resize(room);
      out_ << '\r' << text << "\x1b[K" << (final ? "\n" : "") << std::flush;
      drawn_ = !final;
      return;
    }
    const int decile = static_cast<int>(fraction * 10);
    if (!final && decile <= last_decile_) return;
    last_decile_ = decile;
    out_ << "import: " << Plural(static_cast<long long>(r.lines), "line") << " read (" << percent
         << "%), " << r.accepted << " accepted, "
         << Plural(static_cast<long long>(r.duplicates), "duplicate") << ", " << r.rejected.size()
         << " rejected\n";
  }

  // A line for the operator; on a terminal in place of the progress line,
  // which the next Update() draws again below it.
  void Say(const std::string& line) {
    if (width_ > 0 && drawn_) out_ << '\r';
    out_ << line << (width_ > 0 ? "\x1b[K\n" : "\n") << std::flush;
    drawn_ = false;
  }

 private:
  std::ostream& out_;
  int width_;
  std::uintmax_t total_;
  int last_decile_ = 0;
  bool drawn_ = false;  // a terminal's progress line is drawn, not ended
};

struct PendingRow {
  std::size_t line;
  json item;
};

// A batch sent again while the daemon cannot take it for now, within
// ImportOptions::retry_for of its first failure.
class Retries {
 public:
  // `say`: a line for the operator (Progress::Say).
  Retries(std::chrono::seconds budget, std::function<void(const std::string&)> say)
      : budget_(budget), say_(std::move(say)) {}

  // Waits before the next try and says so; false (at once) once the
  // budget is spent. `retry_after`: the daemon's Retry-After (seconds)
  // after a 503; none: the daemon could not be reached.
  bool Wait(const std::string& why, const std::optional<std::string>& retry_after) {
    const auto now = std::chrono::steady_clock::now();
    if (!first_) first_ = now;
    const auto left = *first_ + budget_ - now;
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    std::chrono::seconds wait = next_;
    if (retry_after) {
      unsigned seconds = 0;
      const char* end = retry_after->data() + retry_after->size();
      auto [at, ec] = std::from_chars(retry_after->data(), end, seconds);
      // Retry-After in seconds (an HTTP date, or none, is a second).
      wait =
          std::chrono::seconds(ec == std::errc() && at == end ? std::clamp(seconds, 1U, 60U) : 1);
    } else {
      next_ = std::min(next_ * 2, std::chrono::seconds(10));
    }
    const auto slept = std::min<std::chrono::steady_clock::duration>(wait, left);
    const auto whole = std::chrono::duration_cast<std::chrono::seconds>(slept).count();
    say_("import: " + why + "; trying the batch again in " +
         std::to_string(std::max<long long>(whole, 1)) + " s");
    ++tries_;
    std::this_thread::sleep_for(slept);
    return true;
  }
  // The batch went through: a later failure has the whole budget again.
  void Reset() {
    first_.reset();
    tries_ = 0;
    next_ = std::chrono::seconds(1);
  }
  // What ends a failure's message: how long it was tried.
  std::string GaveUp() const {
    if (tries_ == 0) return "";
    return " (tried again for " + std::to_string(budget_.count()) +
           " s; --retry-for sets how long)";
  }

 private:
  std::chrono::seconds budget_;
  std::function<void(const std::string&)> say_;
  std::optional<std::chrono::steady_clock::time_point> first_;
  std::chrono::seconds next_{1};
  int tries_ = 0;
};

}  // namespace

Status Import(const ImportOptions& options, ImportResult& result, std::ostream& progress_out) {
  CsvLineReader in(options.path);
  if (!in.open_error().empty()) return Status::Error(in.open_error());
  auto client = Connect(options.remote);
  if (!client.ok()) return client.status();
  const Remote& remote = options.remote;

  std::string line;
  std::vector<std::string> fields;
  const auto header = in.Next(line);
  if (header == CsvLineReader::Read::kEnd) {
    return Status::Error(options.path + ": empty file (no header)");
  }
  if (header == CsvLineReader::Read::kTooLong) {
    return Status::Error(options.path + ":1: the header line is longer than 1 MiB");
  }
  if (auto e = SplitCsvLine(line, fields)) return Status::Error(options.path + ":1: " + *e);
  const std::span<const std::string_view> columns = ColumnsOf(options.kind);
  const char* target =
      options.kind == ImportOptions::Kind::kEvents ? "/v1/events" : "/v1/purchases";
  std::vector<int> index(columns.size(), -1);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    bool known = false;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (fields[i] == columns[c]) {
        index[c] = static_cast<int>(i);
        known = true;
      }
    }
    if (!known) {
      std::string expected;
      for (std::string_view c : columns) expected += (expected.empty() ? "" : ",") + std::string(c);
      return Status::Error(options.path + ":1: unknown column '" + Excerpt(fields[i]) +
                           "' (expected " + expected + ")");
    }
  }

  Progress progress(progress_out, options.terminal_width, in.size());
  auto reject = [&](std::size_t line_no, const std::string& what) {
    result.rejected.push_back(options.path + ":" + std::to_string(line_no) + ": " + what);
  };

  // Whether the daemon has answered this import: from then on, not
  // reaching it is a restart to wait for, not a wrong --url.
  bool answered = false;
  // Sends `rows`; on a 400/409 naming a row, rejects it and sends the rest.
  auto send = [&](std::vector<PendingRow>& rows) -> Status {
    Retries retries(options.retry_for, [&](const std::string& said) { progress.Say(said); });
    while (!rows.empty()) {
      json items = json::array();
      for (const PendingRow& r : rows) items.push_back(r.item);
      auto answer = (*client)->Request("POST", target, items.dump());
      if (!answer.ok()) {
        if (answered && retries.Wait(answer.status().message(), std::nullopt)) continue;
        return Status::Error(answer.status().message() + retries.GaveUp());
      }
      answered = true;
      if (answer->status == 503) {
        const std::string why = ErrorOf(*answer, remote);
        if (retries.Wait("the daemon cannot take it for now (503): " + why, answer->retry_after)) {
          continue;
        }
        return Status::Error("the daemon refused a batch: " + why + retries.GaveUp());
      }
      retries.Reset();
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
        return Status::Error("the daemon refused a batch: " + ErrorOf(*answer, remote));
      }
      const auto bad = body["index"].get<std::size_t>();
      std::string what = ErrorOf(*answer, remote);
      if (body.contains("field") && body["field"].is_string()) {
        what = "field '" + body["field"].get<std::string>() + "': " + what;
      }
      reject(rows[bad].line, what);
      rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(bad));
    }
    return Status::Ok();
  };

  // A batch is sent at options.batch rows, or before its body would pass
  // the daemon's limit (1,000 rows of 4 KB; a row's attributes may be 64 KB).
  std::vector<PendingRow> batch;
  std::size_t batch_bytes = 1;  // the array's brackets, and a comma a row
  // Nor past the daemon's values in a body (rows of dense attributes).
  std::size_t batch_values = 1;  // the array
  const auto flush = [&]() -> Status {
    batch_bytes = 1;
    batch_values = 1;
    if (batch.empty()) return Status::Ok();
    const std::size_t last_line = batch.back().line;
    if (Status s = send(batch); !s.ok()) {
      return Status::Error(s.message() + " (after line " + std::to_string(last_line) + ")");
    }
    return Status::Ok();
  };
  for (CsvLineReader::Read read; (read = in.Next(line)) != CsvLineReader::Read::kEnd;) {
    if (read == CsvLineReader::Read::kLine && line.empty()) continue;
    ++result.lines;
    if (read == CsvLineReader::Read::kTooLong) {
      reject(in.number(), "the line is longer than 1 MiB");
      continue;
    }
    if (auto bad = InvalidUtf8At(line)) {
      // (As JSON it could not be sent at all.)
      reject(in.number(), "the line is not valid UTF-8 (byte " + std::to_string(*bad + 1) + ")");
      continue;
    }
    if (auto e = SplitCsvLine(line, fields)) {
      reject(in.number(), *e);
      continue;
    }
    PendingRow row{in.number(), RowToItem(fields, index, columns)};
    const std::size_t bytes = row.item.dump().size() + 1;
    if (bytes + 1 > api::kMaxIngestBody) {
      reject(in.number(), "the row is over 4 MiB as JSON, more than a request may carry");
      continue;
    }
    const std::size_t values = ValuesOf(row.item);
    if (batch_bytes + bytes > api::kMaxIngestBody || batch_values + values > kMaxJsonValues) {
      if (Status s = flush(); !s.ok()) return s;
    }
    batch_bytes += bytes;
    batch_values += values;
    batch.push_back(std::move(row));
    if (batch.size() >= options.batch) {
      if (Status s = flush(); !s.ok()) return s;
      progress.Update(in.position(), result);
    }
  }
  if (!in.read_error().empty()) {
    return Status::Error("reading " + options.path + " failed after line " +
                         std::to_string(in.number()) + ": " + in.read_error());
  }
  if (Status s = flush(); !s.ok()) return s;
  progress.Update(in.size(), result, true);
  return Status::Ok();
}

}  // namespace tp
