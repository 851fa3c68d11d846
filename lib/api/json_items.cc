#include "api/json_items.h"

#include <algorithm>

#include "core/json_parse.h"
#include "core/text.h"
#include "planner/purchase_check.h"

namespace tp::json_items {
namespace {

// The error ParseJson() reported, as the body's: the item's index and its
// top-level field when the path has them (a path that starts with an index
// is in an array of items, one that starts with a key in the one item the
// body is).
BodyError ParseError(const JsonParseError& e) {
  BodyError out{e.message, std::nullopt, ""};
  if (e.path.empty()) return out;
  out.error = e.PathText() + ": " + e.message;
  const bool array = e.path[0].index.has_value();
  out.index = array ? *e.path[0].index : 0;
  const std::size_t field_at = array ? 1 : 0;
  if (e.path.size() > field_at && !e.path[field_at].index)
    out.field = Excerpt(e.path[field_at].key);
  return out;
}

}  // namespace

std::string Shown(const json& v) {
  return Excerpt(v.dump(-1, ' ', false, json::error_handler_t::replace), 48);
}

const json* Find(const json& item, const char* key) {
  auto it = item.find(key);
  return it == item.end() ? nullptr : &*it;
}

BodyError Fail(std::string field, std::string message) {
  return {std::move(message), std::nullopt, std::move(field)};
}

std::optional<BodyError> Check(const char* field, std::optional<std::string> problem) {
  if (!problem) return std::nullopt;
  return Fail(field, std::move(*problem));
}

BodyError Missing(const char* field) {
  return Fail(field, std::string("missing field '") + field + "'");
}

std::optional<BodyError> OnlyFields(const json& item, const char* noun,
                                    std::initializer_list<const char*> allowed) {
  if (!item.is_object()) {
    return Fail("", std::string("each ") + noun + " must be a JSON object, got " + Shown(item));
  }
  for (const auto& field : item.items()) {
    // (Not a structured binding: clang 14 cannot capture one in a lambda.)
    const std::string& key = field.key();
    if (std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      continue;
    }
    std::string expected;
    for (const char* a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
    return Fail(Excerpt(key), "unknown field '" + Excerpt(key) + "' (expected " + expected + ")");
  }
  return std::nullopt;
}

std::optional<BodyError> Text(const json& item, const char* field, std::string& out) {
  const json* v = Find(item, field);
  if (v == nullptr) return Missing(field);
  if (!v->is_string())
    return Fail(field, std::string(field) + " must be a string, got " + Shown(*v));
  out = v->get<std::string>();
  return std::nullopt;
}

std::optional<BodyError> Time(const json& item, const char* field, Instant& out) {
  const json* at = Find(item, field);
  if (at == nullptr) return Missing(field);
  auto instant = at->is_string() ? ParseRfc3339(at->get_ref<const std::string&>()) : std::nullopt;
  if (!instant) {
    return Fail(field, std::string(field) +
                           " must be an RFC 3339 time with an offset, like "
                           "2026-11-01T15:30:00+08:00, got " +
                           Shown(*at));
  }
  out = *instant;
  return std::nullopt;
}

std::optional<BodyError> Attributes(const json& item, std::string& out) {
  out.clear();
  const json* attrs = Find(item, "attributes");
  if (attrs == nullptr || attrs->is_null()) return std::nullopt;
  if (!attrs->is_object()) {
    return Fail("attributes", "attributes must be a JSON object, got " + Shown(*attrs));
  }
  // Canonical: keys sorted (std::map), no whitespace. Its depth is bounded
  // by the parse, so dump() cannot recurse too deep.
  if (!attrs->empty()) out = attrs->dump();
  return Check("attributes", AttributesProblem(out));
}

std::optional<BodyError> Frame(std::string_view body, const char* noun, const char* nouns,
                               std::size_t max_items, json& doc) {
  ParsedJson parsed = ParseJson(body, JsonLimits{.max_root_items = max_items});
  if (parsed.too_many_root_items) {
    return BodyError{std::string("too many ") + nouns + " in one request (at most " +
                         std::to_string(max_items) + ")",
                     std::nullopt, ""};
  }
  if (parsed.error) return ParseError(*parsed.error);
  doc = std::move(parsed.value);
  if (doc.is_object()) return std::nullopt;
  if (!doc.is_array()) {
    return BodyError{std::string("the body must be a ") + noun + " object or an array of them",
                     std::nullopt, ""};
  }
  if (doc.empty()) return BodyError{std::string("the array holds no ") + nouns, std::nullopt, ""};
  return std::nullopt;
}

}  // namespace tp::json_items
