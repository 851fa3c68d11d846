// What every route of the HTTP API shares: JSON answers and errors, the
// pieces of a request target, and JSON object bodies checked field by field
// (docs/api.md). No Beast here: routes see http/server.h's plain request and
// response.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/server.h"

namespace tp::api {

// Answers keep their keys in the order written, for people reading them.
using Json = nlohmann::ordered_json;
// Request bodies, as core/json_parse.h parses them.
using RequestJson = nlohmann::json;

HttpResponse JsonResponse(int status, const Json& body);
// {"error": message}
HttpResponse ErrorResponse(int status, std::string message);
// {"error": message, "field": field}: the field the client must change.
HttpResponse FieldError(int status, std::string message, std::string_view field);
// 503 with Retry-After: something the call needs is short for now (the
// disk is full, the daemon is stopping); the client tries again later.
HttpResponse Unavailable(std::string message);
// A store call failed: 503 with Retry-After when `failed` is Unavailable,
// else 500; `what` says what could not be done.
HttpResponse StoreFailed(const Status& failed, const std::string& what);

// Whether a Content-Type is application/json (parameters ignored).
bool IsJson(std::string_view content_type);
// Decodes the %XX escapes of one path segment; nullopt if malformed.
std::optional<std::string> PercentDecode(std::string_view segment);
// The non-empty segments of a path ("/v1//buyers/" -> v1, buyers).
std::vector<std::string_view> Segments(std::string_view path);
// The value of `key` in the target's query string, percent-decoded ('+' is
// a space); nullopt if absent.
std::optional<std::string> QueryParam(std::string_view target, std::string_view key);
// A whole non-negative decimal number, or nullopt.
std::optional<std::int64_t> WholeNumber(std::string_view text);

// The values a ParseObject() body may hold: an ack's 10,000 receipts and
// room to spare.
inline constexpr std::size_t kMaxObjectBodyValues = 20'000;

// Parses an optional JSON object body (core/json_parse.h's bounds) into
// `out` ({} when the body is empty); the 400 that says what is wrong, with
// the field when there is one, if it is not an object of `allowed` keys.
std::optional<HttpResponse> ParseObject(const std::string& body, RequestJson& out,
                                        std::initializer_list<const char*> allowed);

}  // namespace tp::api
