#include "simulate/simulate.h"

#include <date/tz.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <unordered_map>

#include "core/clock.h"
#include "core/json.h"
#include "scheduler/memory_store.h"
#include "scheduler/scheduler.h"
#include "simulate/csv.h"

namespace tp {
namespace {

void AppendLine(std::string& buf, const TouchpointView& t) {
  const std::pair<const char*, std::string_view> names[] = {
      {"{\"id\":", t.id},           {",\"buyer_id\":", t.buyer_id}, {",\"order_id\":", t.order_id},
      {",\"cadence\":", t.cadence}, {",\"topic\":", t.topic},       {",\"tier\":", t.tier},
      {",\"product\":", t.product}};
  for (const auto& [key, value] : names) {
    buf += key;
    AppendJsonString(buf, value);
  }
  buf += ",\"due_at\":\"";
  AppendRfc3339(buf, t.due_at, t.zone);
  buf += "\",\"fire_at\":";
  if (t.fire_at) {
    buf.push_back('"');
    AppendRfc3339(buf, *t.fire_at, t.zone);
    buf.push_back('"');
  } else {
    buf += "null";
  }
  buf += ",\"status\":\"";
  buf += StateName(t.state);
  buf += "\"}\n";
}

// Buffers output lines; fired ones go to `out`, the rest to a temporary
// spool file appended at the end, so memory stays flat however long the run.
class LineWriter final : public MemoryStore::Observer {
 public:
  explicit LineWriter(std::ostream& out) : out_(out), spool_(std::tmpfile()) {}
  ~LineWriter() override {
    if (spool_ != nullptr) std::fclose(spool_);
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  bool ok() const { return spool_ok_ && out_.good(); }

  void OnFinal(const TouchpointView& t) override {
    ++lines_;
    if (t.state == TouchpointState::kFired) {
      AppendLine(fired_, t);
      if (fired_.size() > kFlushAt) FlushFired();
    } else {
      AppendLine(rest_, t);
      if (rest_.size() > kFlushAt && spool_ != nullptr) FlushRest();
    }
  }
  void Pending(const TouchpointView& t) {
    ++lines_;
    AppendLine(fired_, t);
    if (fired_.size() > kFlushAt) FlushFired();
  }
  // Writes the fired lines, then the spool. Without a spool file (no
  // writable temporary directory) the rest were kept in memory instead.
  void FinishFinals() {
    FlushFired();
    if (spool_ == nullptr) {
      out_.write(rest_.data(), static_cast<std::streamsize>(rest_.size()));
      rest_.clear();
      return;
    }
    FlushRest();
    std::rewind(spool_);
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, spool_)) > 0) {
      out_.write(buf, static_cast<std::streamsize>(n));
    }
    spool_ok_ = spool_ok_ && !std::ferror(spool_);
  }
  void Flush() {
    FlushFired();
    out_.flush();
  }
  std::uint64_t lines() const { return lines_; }

 private:
  static constexpr std::size_t kFlushAt = 1 << 16;
  void FlushFired() {
    out_.write(fired_.data(), static_cast<std::streamsize>(fired_.size()));
    fired_.clear();
  }
  void FlushRest() {
    spool_ok_ = spool_ok_ && std::fwrite(rest_.data(), 1, rest_.size(), spool_) == rest_.size();
    rest_.clear();
  }

  std::ostream& out_;
  std::FILE* spool_;
  bool spool_ok_ = true;
  std::string fired_;
  std::string rest_;
  std::uint64_t lines_ = 0;
};

struct Row {
  std::int64_t at_ms;
  std::uint64_t offset;  // byte offset of the line in the file
  std::uint64_t line;
  std::uint64_t order_hash;
};

std::string ErrorAt(const std::string& file, std::uint64_t line, const std::string& message) {
  return file + ":" + std::to_string(line) + ": error: " + message;
}

}  // namespace

SimulateResult Simulate(const std::shared_ptr<const Rules>& rules, const SimulateOptions& options,
                        std::ostream& out) {
  SimulateResult result;
  const std::string& path = options.purchases_path;
  auto fail = [&](std::uint64_t line, const std::string& message) {
    if (result.errors.size() < options.max_errors)
      result.errors.push_back(ErrorAt(path, line, message));
  };

  // Pass 1: validate every row; remember where each is and when it happened.
  CsvLineReader reader(path);
  if (!reader.open_error().empty()) {
    result.errors.push_back("error: " + reader.open_error());
    return result;
  }
  std::string line;
  std::vector<std::string> fields;
  const auto header = reader.Next(line);
  if (header != CsvLineReader::Read::kLine) {
    fail(1, header == CsvLineReader::Read::kEnd ? "the file is empty (expected a header line)"
                                                : "the header line is longer than 1 MiB");
    return result;
  }
  if (auto e = SplitCsvLine(line, fields)) {
    fail(1, *e);
    return result;
  }
  auto parser = PurchaseRowParser::FromHeader(fields, *rules);
  if (!parser.ok()) {
    fail(1, parser.status().message());
    return result;
  }
  std::vector<Row> rows;
  Purchase purchase;
  std::uint64_t bad_rows = 0;
  bool sorted = true;
  for (CsvLineReader::Read read; (read = reader.Next(line)) != CsvLineReader::Read::kEnd;) {
    const std::uint64_t number = reader.number(), offset = reader.offset();
    if (read == CsvLineReader::Read::kTooLong) {
      ++bad_rows;
      fail(number, "the line is longer than 1 MiB");
      continue;
    }
    if (line.empty()) continue;
    std::optional<std::string> problem = SplitCsvLine(line, fields);
    if (!problem) problem = parser->Parse(fields, purchase);
    if (problem) {
      ++bad_rows;
      fail(number, *problem);
      continue;
    }
    const std::int64_t at = purchase.purchased_at.time_since_epoch().count();
    if (!rows.empty() && at < rows.back().at_ms) sorted = false;
    rows.push_back(Row{at, offset, number, std::hash<std::string>{}(purchase.order_id)});
  }
  if (!reader.read_error().empty()) {
    result.errors.push_back(path + ": error: reading failed after line " +
                            std::to_string(reader.number()) + ": " + reader.read_error());
    return result;
  }
  // Same order id twice: fine when identical (ingest ignores the repeat),
  // an error otherwise. Compare the candidates found by hash exactly.
  {
    std::vector<std::uint32_t> by_hash(rows.size());
    for (std::uint32_t i = 0; i < by_hash.size(); ++i) by_hash[i] = i;
    std::sort(by_hash.begin(), by_hash.end(), [&](std::uint32_t a, std::uint32_t b) {
      return std::tie(rows[a].order_hash, rows[a].line) <
             std::tie(rows[b].order_hash, rows[b].line);
    });
    CsvLineReader again(path);
    auto load = [&](const Row& r, Purchase& p) {
      again.Seek(r.offset, r.line);
      again.Next(line);
      (void)SplitCsvLine(line, fields);
      (void)parser->Parse(fields, p);
      // The zone, not its spelling: "" and the default named are the same.
      if (p.timezone.empty()) p.timezone = rules->timezone->name();
      if (const Zone* zone = FindZone(p.timezone)) p.timezone = zone->name();
    };
    Purchase first, other;
    for (std::size_t i = 0; i < by_hash.size();) {
      std::size_t j = i + 1;
      while (j < by_hash.size() && rows[by_hash[j]].order_hash == rows[by_hash[i]].order_hash) ++j;
      for (std::size_t a = i; a + 1 < j; ++a) {
        load(rows[by_hash[a]], first);
        for (std::size_t b = a + 1; b < j; ++b) {
          load(rows[by_hash[b]], other);
          if (other.order_id != first.order_id) continue;
          const std::string_view differs = first.FirstDifference(other);
          if (differs.empty()) continue;
          ++bad_rows;
          fail(rows[by_hash[b]].line, "field '" + std::string(differs) + "': order_id '" +
                                          other.order_id + "' is also line " +
                                          std::to_string(rows[by_hash[a]].line) +
                                          ", with another " + std::string(differs));
        }
      }
      i = j;
    }
  }
  if (bad_rows > 0) {
    if (bad_rows > result.errors.size()) {
      result.errors.push_back(path + ": error: " + std::to_string(bad_rows) +
                              " bad rows in all; nothing was simulated");
    }
    return result;
  }
  if (!sorted) {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.at_ms < b.at_ms; });
  }

  // Pass 2: replay on the virtual clock.
  LineWriter writer(out);
  MemoryStore store(rules, &writer);
  FakeClock clock(Instant{});
  const RulesInForce in_force(rules);  // no reload here: these rules throughout
  Scheduler scheduler(store, clock, in_force);
  const Instant end = options.until.value_or(Instant::max());
  auto run_until = [&](Instant limit) -> bool {
    for (;;) {
      auto next = scheduler.NextWakeup();
      if (!next.ok() || !*next || **next > limit) return next.ok();
      clock.Set(**next);
      if (!scheduler.RunDue().ok()) return false;
    }
  };
  CsvLineReader replay(path);
  std::uint64_t expected_offset = std::numeric_limits<std::uint64_t>::max();
  for (const Row& r : rows) {
    const Instant at{Millis(r.at_ms)};
    if (at > end) break;
    if (r.offset != expected_offset) replay.Seek(r.offset, r.line);
    replay.Next(line);
    expected_offset = replay.position();
    (void)SplitCsvLine(line, fields);
    (void)parser->Parse(fields, purchase);
    if (!run_until(at)) {
      result.errors.push_back(path + ": error: the scheduler failed");
      return result;
    }
    if (clock.Now() < at) clock.Set(at);
    auto outcome = scheduler.Ingest(purchase);
    if (!outcome.ok()) {
      result.errors.push_back(ErrorAt(path, r.line, outcome.status().message()));
      return result;
    }
    if (outcome->kind == IngestOutcome::Kind::kDuplicate) {
      ++result.duplicates;
    } else {
      ++result.purchases;
    }
  }
  if (!run_until(end)) {
    result.errors.push_back(path + ": error: the scheduler failed");
    return result;
  }
  writer.FinishFinals();
  store.ForEachPending([&](const TouchpointView& t) { writer.Pending(t); });
  writer.Flush();
  if (!writer.ok()) result.errors.push_back("error: writing the output failed");
  result.lines = writer.lines();
  return result;
}

}  // namespace tp
