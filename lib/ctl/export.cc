#include "ctl/export.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>

#include "core/time.h"
#include "simulate/csv.h"
#include "store/export_reader.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

// One progress line per file: redrawn in place on a terminal, otherwise
// printed about every 10% and at the end.
class ExportProgress {
 public:
  ExportProgress(std::ostream& out, int width, std::string what, std::int64_t total)
      : out_(out), width_(width), what_(std::move(what)), total_(total) {}
  void Update(std::int64_t done, bool final = false) {
    const int percent = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
    if (!final && percent == last_percent_) return;
    last_percent_ = percent;
    const int decile = percent / 10;
    if (width_ == 0 && !final && decile <= last_decile_) return;
    last_decile_ = decile;
    std::string text = what_ + ": " + std::to_string(done) + " of " + std::to_string(total_) +
                       " (" + std::to_string(percent) + "%)";
    if (width_ > 0) {
      // The last column stays empty: writing it makes some terminals wrap.
      if (text.size() >= static_cast<std::size_t>(width_)) {
        text.resize(static_cast<std::size_t>(width_ - 1));
      }
      out_ << '\r' << text << "\x1b[K" << (final ? "\n" : "") << std::flush;
    } else {
      out_ << "export: " << text << '\n';
    }
  }

 private:
  std::ostream& out_;
  int width_;
  std::string what_;
  std::int64_t total_;
  int last_percent_ = -1;
  int last_decile_ = 0;
};

// A CSV file written through NAME.partial and renamed by Commit(); removed
// if never committed.
class CsvFile {
 public:
  Status Open(const fs::path& path, std::string_view header) {
    path_ = path;
    partial_ = path.string() + ".partial";
    std::error_code ec;
    if (fs::exists(path, ec)) {
      return Status::Error(path.string() + " exists; remove it or choose another folder");
    }
    out_.open(partial_, std::ios::binary | std::ios::trunc);
    if (!out_)
      return Status::Error("cannot write " + partial_.string() + ": " + std::strerror(errno));
    open_ = true;
    row_ = header;
    row_.push_back('\n');
    return Status::Ok();
  }
  ~CsvFile() {
    if (open_) {
      out_.close();
      std::error_code ec;
      fs::remove(partial_, ec);
    }
  }
  CsvFile() = default;
  CsvFile(const CsvFile&) = delete;
  CsvFile& operator=(const CsvFile&) = delete;

  // Appends one field of the current row (comma-separated, RFC 4180 quoting).
  void Field(std::string_view value) {
    if (!first_) row_.push_back(',');
    first_ = false;
    AppendCsvField(row_, value);
  }
  void EndRow() {
    row_.push_back('\n');
    first_ = true;
    if (row_.size() >= (1 << 16)) Flush();
  }
  Status Commit() {
    Flush();
    out_.close();
    if (!out_)
      return Status::Error("writing " + partial_.string() + " failed: " + std::strerror(errno));
    std::error_code ec;
    fs::rename(partial_, path_, ec);
    if (ec) return Status::Error("cannot rename " + partial_.string() + ": " + ec.message());
    open_ = false;
    return Status::Ok();
  }

 private:
  void Flush() {
    out_.write(row_.data(), static_cast<std::streamsize>(row_.size()));
    row_.clear();
  }
  fs::path path_, partial_;
  std::ofstream out_;
  std::string row_;
  bool first_ = true;
  bool open_ = false;
};

std::string Number(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string Header(std::span<const std::string_view> names) {
  std::string h;
  for (std::string_view n : names) {
    if (!h.empty()) h.push_back(',');
    h += n;
  }
  return h;
}

}  // namespace

Status Export(const ExportOptions& options, ExportResult& result, std::ostream& progress) {
  auto reader = ExportReader::Open(options.database);
  if (!reader.ok()) return reader.status();
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) return Status::Error("cannot create " + options.out_dir + ": " + ec.message());
  const fs::path dir(options.out_dir);

  auto purchases = (*reader)->PurchaseCount();
  if (!purchases.ok()) return purchases.status();
  auto events = (*reader)->EventCount();
  if (!events.ok()) return events.status();

  CsvFile bought;
  if (Status s = bought.Open(dir / "purchases.csv", Header(PurchaseRowParser::kColumnNames));
      !s.ok()) {
    return s;
  }
  CsvFile heard;
  if (Status s = heard.Open(dir / "events.csv", Header(EventRowParser::kColumnNames)); !s.ok()) {
    return s;
  }

  ExportProgress p_progress(progress, options.terminal_width, "purchases", *purchases);
  std::string at;
  Status s = (*reader)->ForEachPurchase([&](const Purchase& p) {
    bought.Field(p.order_id);
    bought.Field(p.buyer_id);
    bought.Field(p.product);
    bought.Field(std::to_string(p.quantity));
    bought.Field(Number(p.amount));
    at.clear();
    AppendRfc3339(at, p.purchased_at, UtcZone());
    bought.Field(at);
    bought.Field(p.timezone);  // as given: blank means the config's zone
    bought.Field(p.attributes);
    bought.EndRow();
    if (++result.purchases % 4096 == 0) p_progress.Update(result.purchases);
    return true;
  });
  if (!s.ok()) return s;
  p_progress.Update(result.purchases, true);

  ExportProgress e_progress(progress, options.terminal_width, "events", *events);
  s = (*reader)->ForEachEvent([&](const EngagementEvent& e) {
    heard.Field(e.event_id);
    heard.Field(e.buyer_id);
    heard.Field(e.type);
    at.clear();
    AppendRfc3339(at, e.at, UtcZone());
    heard.Field(at);
    heard.Field(e.touchpoint_id);
    heard.EndRow();
    if (++result.events % 4096 == 0) e_progress.Update(result.events);
    return true;
  });
  if (!s.ok()) return s;
  e_progress.Update(result.events, true);
  if (Status c = bought.Commit(); !c.ok()) return c;
  return heard.Commit();
}

}  // namespace tp
