#include "api/http_json.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "core/json_parse.h"
#include "core/text.h"

namespace tp::api {

HttpResponse JsonResponse(int status, const Json& body) {
  return HttpResponse{status, body.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

HttpResponse ErrorResponse(int status, std::string message) {
  return JsonResponse(status, Json{{"error", std::move(message)}});
}

HttpResponse FieldError(int status, std::string message, std::string_view field) {
  return JsonResponse(status, Json{{"error", std::move(message)}, {"field", field}});
}

HttpResponse Unavailable(std::string message) {
  HttpResponse r = ErrorResponse(503, std::move(message) + "; try again later");
  r.headers.emplace_back("Retry-After", "10");
  return r;
}

HttpResponse StoreFailed(const Status& failed, const std::string& what) {
  if (!failed.unavailable()) return ErrorResponse(500, what + ": " + failed.message());
  return Unavailable(what + ": " + failed.message());
}

bool IsJson(std::string_view content_type) {
  std::string lower;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ' && c != '\t')
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return lower == "application/json";
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      std::replace(value.begin(), value.end(), '+', ' ');
      return PercentDecode(value).value_or(std::string());
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::int64_t> WholeNumber(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

std::optional<HttpResponse> ParseObject(const std::string& body, RequestJson& out,
                                        std::initializer_list<const char*> allowed) {
  out = RequestJson::object();
  if (body.empty()) return std::nullopt;
  // A few fields (a lease's, an ack's receipts): no more values than that.
  ParsedJson parsed = ParseJson(body, JsonLimits{.max_values = kMaxObjectBodyValues});
  if (parsed.error) {
    const JsonParseError& e = *parsed.error;
    Json answer = {{"error", e.path.empty() ? e.message : e.PathText() + ": " + e.message}};
    if (!e.path.empty() && !e.path[0].index) answer["field"] = Excerpt(e.path[0].key);
    return JsonResponse(400, answer);
  }
  out = std::move(parsed.value);
  if (!out.is_object()) return ErrorResponse(400, "the body must be a JSON object");
  for (const auto& item : out.items()) {
    const std::string& key = item.key();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      std::string expected;
      for (const char* a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
      return FieldError(400, "unknown field '" + Excerpt(key) + "' (expected " + expected + ")",
                        Excerpt(key));
    }
  }
  return std::nullopt;
}

}  // namespace tp::api
