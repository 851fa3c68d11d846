// What the ingest bodies share (POST /v1/purchases, POST /v1/events): one
// JSON object or an array of them, parsed by ParseJson() and checked item by
// item before anything is recorded (a request is atomic), and the helpers
// that read one item's fields with an error naming the field.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tp {

// What is wrong with a request body: the first bad item and field. `index`
// is the item's position (0 for a single object); `field` is empty when the
// problem is not one field's (malformed JSON, wrong shape, too many items).
struct BodyError {
  std::string error;
  std::optional<std::size_t> index;
  std::string field;
};

namespace json_items {

using nlohmann::json;

// A JSON value for a message: short, and never the whole of a huge one.
std::string Shown(const json& v);

const json* Find(const json& item, const char* key);
BodyError Fail(std::string field, std::string message);
// `problem` as the field's error, or nullopt.
std::optional<BodyError> Check(const char* field, std::optional<std::string> problem);
BodyError Missing(const char* field);
// An error unless `item` is an object whose keys are all in `allowed`;
// `noun` names an item ("purchase").
std::optional<BodyError> OnlyFields(const json& item, const char* noun,
                                    std::initializer_list<const char*> allowed);
// A required string field.
std::optional<BodyError> Text(const json& item, const char* field, std::string& out);
// A required RFC 3339 time with an offset.
std::optional<BodyError> Time(const json& item, const char* field, Instant& out);
// An optional object, in canonical form (keys sorted, no whitespace), or
// "" when absent, null or empty.
std::optional<BodyError> Attributes(const json& item, std::string& out);

// Parses `body` as one item or an array of 1 to `max_items` of them
// (`noun`, `nouns` name them in errors), filling `items` with `parse`
// (which returns an item's error, its index unset). On an error `items` is
// empty.
template <typename T>
std::optional<BodyError> ParseItems(
    std::string_view body, const char* noun, const char* nouns, std::size_t max_items,
    const std::function<std::optional<BodyError>(const json&, T&)>& parse, std::vector<T>& items);

// The error of a body ParseJson() refused, or of one that is no object or
// array, or an empty or too long array; nullopt when `doc` holds the items.
std::optional<BodyError> Frame(std::string_view body, const char* noun, const char* nouns,
                               std::size_t max_items, json& doc);

template <typename T>
std::optional<BodyError> ParseItems(
    std::string_view body, const char* noun, const char* nouns, std::size_t max_items,
    const std::function<std::optional<BodyError>(const json&, T&)>& parse, std::vector<T>& items) {
  items.clear();
  json doc;
  if (auto e = Frame(body, noun, nouns, max_items, doc)) return e;
  if (doc.is_object()) {
    items.resize(1);
    if (auto e = parse(doc, items[0])) {
      e->index = 0;
      items.clear();
      return e;
    }
    return std::nullopt;
  }
  items.resize(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    if (auto e = parse(doc[i], items[i])) {
      e->index = i;
      items.clear();
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace json_items
}  // namespace tp
