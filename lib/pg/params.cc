// pg::Params: a statement's parameters, as the texts libpq sends.
#include "pg/connection.h"

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

namespace tp::pg {
namespace {

void AppendArrayElement(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

Params& Params::Add(std::string_view text) {
  // libpq sends a text parameter up to its first NUL (the lengths are for
  // binary ones), so the statement would run on a shorter text: another
  // buyer's id, or an array literal cut short. PostgreSQL's text cannot
  // hold one either.
  if (text.find('\0') != std::string_view::npos) {
    throw Error("a text holds a NUL byte, which PostgreSQL cannot store", "22021", false);
  }
  const std::string& s = storage_.emplace_back(text);
  values_.push_back(s.c_str());
  lengths_.push_back(static_cast<int>(s.size()));
  return *this;
}

Params& Params::Add(std::int64_t v) { return Add(std::string_view(std::to_string(v))); }

namespace {

// The shortest text that reads back as `v`.
void AppendDouble(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) throw Error("cannot print a number", "", false);
  out.append(buf, end);
}

// PostgreSQL's array literal of `values`, each written by `append`.
template <typename T, typename Append>
std::string ArrayLiteral(const std::vector<T>& values, Append append) {
  std::string s = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s += ',';
    append(s, values[i]);
  }
  s += '}';
  return s;
}

}  // namespace

Params& Params::Add(double v) {
  std::string s;
  AppendDouble(s, v);
  return Add(std::string_view(s));
}

Params& Params::AddNull() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  return *this;
}

Params& Params::AddTextOrNull(std::string_view text) {
  return text.empty() ? AddNull() : Add(text);
}

Params& Params::AddArray(const std::vector<std::int64_t>& values) {
  return Add(std::string_view(
      ArrayLiteral(values, [](std::string& s, std::int64_t v) { s += std::to_string(v); })));
}

Params& Params::AddArray(const std::vector<std::string>& values) {
  return Add(std::string_view(ArrayLiteral(values, AppendArrayElement)));
}

Params& Params::AddArray(const std::vector<double>& values) {
  return Add(std::string_view(ArrayLiteral(values, AppendDouble)));
}

}  // namespace tp::pg
