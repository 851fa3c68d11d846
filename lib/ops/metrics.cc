#include "ops/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tp::metrics {
namespace {

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
    out.append(buffer, ec == std::errc() ? end : buffer);
  }
}

// HELP text escapes backslash and newline; label values also the quote.
void AppendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view le = {}) {
  if (names.empty() && le.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i], true);
    out += '"';
  }
  if (!le.empty()) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

}  // namespace

Family::Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
               std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

Family::Series& Family::At(std::initializer_list<std::string_view> labels) {
  key_.clear();
  for (std::string_view l : labels) {
    key_ += l;
    key_ += '\x1f';  // cannot occur in a label value we produce
  }
  auto it = series_.find(key_);
  if (it != series_.end()) return it->second;
  Series s;
  s.labels.assign(labels.begin(), labels.end());
  s.labels.resize(label_names_.size());
  s.buckets.assign(bounds_.size(), 0);
  return series_.emplace(key_, std::move(s)).first->second;
}

void Family::Add(std::initializer_list<std::string_view> labels, double v) {
  At(labels).value += v;
}

void Family::Set(std::initializer_list<std::string_view> labels, double v) { At(labels).value = v; }

void Family::Observe(std::initializer_list<std::string_view> labels, double v) {
  Series& s = At(labels);
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  if (bucket != bounds_.end()) ++s.buckets[static_cast<std::size_t>(bucket - bounds_.begin())];
  s.sum += v;
  ++s.count;
}

void Family::Render(std::string& out) const {
  static constexpr const char* kTypes[] = {"counter", "gauge", "histogram"};
  out += "# HELP ";
  out += name_;
  out += ' ';
  AppendEscaped(out, help_, false);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += kTypes[static_cast<int>(type_)];
  out += '\n';
  for (const auto& entry : series_) {
    const Series& s = entry.second;
    if (type_ != Type::kHistogram) {
      out += name_;
      AppendLabels(out, label_names_, s.labels);
      out += ' ';
      AppendNumber(out, s.value);
      out += '\n';
      continue;
    }
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      std::string le;
      if (i < bounds_.size()) {
        cumulative += s.buckets[i];
        AppendNumber(le, bounds_[i]);
      } else {
        cumulative = s.count;
        le = "+Inf";
      }
      out += name_;
      out += "_bucket";
      AppendLabels(out, label_names_, s.labels, le);
      out += ' ';
      out += std::to_string(cumulative);
      out += '\n';
    }
    out += name_;
    out += "_sum";
    AppendLabels(out, label_names_, s.labels);
    out += ' ';
    AppendNumber(out, s.sum);
    out += '\n';
    out += name_;
    out += "_count";
    AppendLabels(out, label_names_, s.labels);
    out += ' ';
    out += std::to_string(s.count);
    out += '\n';
  }
}

Family& Registry::Counter(std::string name, std::string help, std::vector<std::string> labels) {
  families_.push_back(std::unique_ptr<Family>(
      new Family(std::move(name), std::move(help), Family::Type::kCounter, std::move(labels), {})));
  return *families_.back();
}

Family& Registry::Gauge(std::string name, std::string help, std::vector<std::string> labels) {
  families_.push_back(std::unique_ptr<Family>(
      new Family(std::move(name), std::move(help), Family::Type::kGauge, std::move(labels), {})));
  return *families_.back();
}

Family& Registry::Histogram(std::string name, std::string help, std::vector<std::string> labels,
                            std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  families_.push_back(
      std::unique_ptr<Family>(new Family(std::move(name), std::move(help), Family::Type::kHistogram,
                                         std::move(labels), std::move(bounds))));
  return *families_.back();
}

std::string Registry::Render() const {
  std::string out;
  out.reserve(8192);
  for (const auto& f : families_) f->Render(out);
  return out;
}

}  // namespace tp::metrics
