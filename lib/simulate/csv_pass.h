// Simulate's passes over one CSV of purchases or of events. The first
// parses and checks every row, keeping each valid row's time, place in the
// file and id digest (not the row: memory stays small however large the
// file), and reports every bad row with its line; an id repeated with other
// content is a bad row. The second reads the rows back by place, in time
// order (ties in file order).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "simulate/csv.h"

namespace tp {

struct CsvRow {
  std::int64_t at_ms;
  std::uint64_t offset;  // byte offset of the line in the file
  std::uint64_t line;
  std::uint64_t id_hash;
};

// How a CSV of `Item`s reads: the parser its header makes, an item's time
// and id, and how two spellings of one item are made to compare equal.
template <typename Item, typename Parser>
struct CsvKind {
  std::function<StatusOr<Parser>(const std::vector<std::string>& header)> from_header;
  std::function<Instant(const Item&)> time;
  std::function<const std::string&(const Item&)> id;
  std::function<void(Item&)> normalize;
  const char* id_field;  // "order_id"
};

template <typename Item, typename Parser>
class CsvPass {
 public:
  // `fail(line, message)` hears of each bad row.
  using Fail = std::function<void(std::uint64_t line, const std::string& message)>;

  CsvPass(std::string path, CsvKind<Item, Parser> kind, Fail fail)
      : path_(std::move(path)), kind_(std::move(kind)), fail_(std::move(fail)), replay_(path_) {}

  // The first pass. Returns why the file could not be read at all (the
  // message is whole), or nullopt; bad rows go to `fail` and bad_rows().
  std::optional<std::string> Index() {
    CsvLineReader reader(path_);
    if (!reader.open_error().empty()) return "error: " + reader.open_error();
    const auto header = reader.Next(line_);
    if (header != CsvLineReader::Read::kLine) {
      Bad(1, header == CsvLineReader::Read::kEnd ? "the file is empty (expected a header line)"
                                                 : "the header line is longer than 1 MiB");
      return std::nullopt;
    }
    if (auto e = SplitCsvLine(line_, fields_)) {
      Bad(1, *e);
      return std::nullopt;
    }
    auto parser = kind_.from_header(fields_);
    if (!parser.ok()) {
      Bad(1, parser.status().message());
      return std::nullopt;
    }
    parser_.emplace(std::move(*parser));
    Item item;
    bool sorted = true;
    for (CsvLineReader::Read read; (read = reader.Next(line_)) != CsvLineReader::Read::kEnd;) {
      const std::uint64_t number = reader.number(), offset = reader.offset();
      if (read == CsvLineReader::Read::kTooLong) {
        Bad(number, "the line is longer than 1 MiB");
        continue;
      }
      if (line_.empty()) continue;
      std::optional<std::string> problem = SplitCsvLine(line_, fields_);
      if (!problem) problem = parser_->Parse(fields_, item);
      if (problem) {
        Bad(number, *problem);
        continue;
      }
      const std::int64_t at = kind_.time(item).time_since_epoch().count();
      if (!rows_.empty() && at < rows_.back().at_ms) sorted = false;
      rows_.push_back(CsvRow{at, offset, number, std::hash<std::string>{}(kind_.id(item))});
    }
    if (!reader.read_error().empty()) {
      return path_ + ": error: reading failed after line " + std::to_string(reader.number()) +
             ": " + reader.read_error();
    }
    CheckRepeats();
    if (!sorted) {
      std::stable_sort(rows_.begin(), rows_.end(),
                       [](const CsvRow& a, const CsvRow& b) { return a.at_ms < b.at_ms; });
    }
    return std::nullopt;
  }

  std::uint64_t bad_rows() const { return bad_rows_; }
  const std::vector<CsvRow>& rows() const { return rows_; }
  const std::string& path() const { return path_; }

  // The second pass: row `r` (of rows()) read back; sequential rows read
  // on without a seek.
  void Load(const CsvRow& r, Item& item) {
    if (r.offset != next_offset_) replay_.Seek(r.offset, r.line);
    replay_.Next(line_);
    next_offset_ = replay_.position();
    (void)SplitCsvLine(line_, fields_);
    (void)parser_->Parse(fields_, item);
  }

 private:
  void Bad(std::uint64_t line, const std::string& message) {
    ++bad_rows_;
    fail_(line, message);
  }

  // One id twice: fine when the rows say the same (the second is a
  // duplicate), a bad row otherwise. Among the rows whose ids share a
  // digest, each is read once and compared with the first row of its id
  // (sameness is transitive), so a retried id costs a read per copy.
  void CheckRepeats() {
    std::vector<std::uint32_t> by_hash(rows_.size());
    for (std::uint32_t i = 0; i < by_hash.size(); ++i) by_hash[i] = i;
    std::sort(by_hash.begin(), by_hash.end(), [&](std::uint32_t a, std::uint32_t b) {
      return std::tie(rows_[a].id_hash, rows_[a].line) < std::tie(rows_[b].id_hash, rows_[b].line);
    });
    std::vector<std::pair<Item, std::uint64_t>> firsts;  // of each id in the group, and its line
    Item other;
    for (std::size_t i = 0; i < by_hash.size();) {
      std::size_t j = i + 1;
      while (j < by_hash.size() && rows_[by_hash[j]].id_hash == rows_[by_hash[i]].id_hash) ++j;
      firsts.clear();
      for (std::size_t k = i; j - i > 1 && k < j; ++k) {
        const CsvRow& r = rows_[by_hash[k]];
        Load(r, other);
        kind_.normalize(other);
        auto first = std::find_if(firsts.begin(), firsts.end(), [&](const auto& f) {
          return kind_.id(f.first) == kind_.id(other);
        });
        if (first == firsts.end()) {
          firsts.emplace_back(other, r.line);
          continue;
        }
        const std::string_view differs = first->first.FirstDifference(other);
        if (differs.empty()) continue;
        Bad(r.line, "field '" + std::string(differs) + "': " + kind_.id_field + " '" +
                        kind_.id(other) + "' is also line " + std::to_string(first->second) +
                        ", with another " + std::string(differs));
      }
      i = j;
    }
    next_offset_ = UINT64_MAX;
  }

  std::string path_;
  CsvKind<Item, Parser> kind_;
  Fail fail_;
  std::optional<Parser> parser_;
  std::vector<CsvRow> rows_;
  std::uint64_t bad_rows_ = 0;
  CsvLineReader replay_;
  std::uint64_t next_offset_ = UINT64_MAX;
  std::string line_;
  std::vector<std::string> fields_;
};

}  // namespace tp
