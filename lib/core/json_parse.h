// Parsing JSON that comes from outside (request bodies, CSV columns): one
// document, with what nlohmann's own parse() would let through refused.
//
// nlohmann's parser itself is iterative, but a document it returns is copied,
// compared and dumped recursively, so nesting is bounded here before any of
// that happens. Its parse() also keeps the last of two equal keys, stops at a
// NUL byte as if the text ended there, and throws out_of_range (not
// parse_error) for a number beyond the double range; each of those is an
// error here, placed on the path of keys and indices where it happened.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tp {

// Arrays and objects inside each other, the outermost one included: `[[1]]`
// is 2 deep. Request bodies allow this many (docs/api.md, "Limits").
inline constexpr std::size_t kMaxJsonDepth = 32;

// One step from the document's root: a key of an object or an index of an
// array.
struct JsonPathPart {
  std::optional<std::size_t> index;  // set for an array element
  std::string key;                   // an object's key otherwise
};

struct JsonParseError {
  std::string message;  // e.g. "duplicate key 'amount'", "a number out of range"
  // Where it happened: the keys and indices leading to the value at fault,
  // empty when it is the document's (malformed JSON, a NUL byte).
  std::vector<JsonPathPart> path;

  // The path as `[3].attributes.size` (indices in brackets), "" for none.
  std::string PathText() const;
};

// Values in all (scalars, arrays and objects, at any depth) that a
// request body may hold: what it costs in memory is the values', up to
// about 100 bytes each (an object's member), where its text takes 2 (`0,`
// or `{}`): a 32 MiB body of `[{},{},...]` would be a gigabyte.
inline constexpr std::size_t kMaxJsonValues = 1'000'000;

struct JsonLimits {
  std::size_t max_depth = kMaxJsonDepth;
  std::size_t max_values = kMaxJsonValues;
  // Elements of a root array: the parse stops at one more, and says so
  // (ParsedJson::too_many_root_items).
  std::size_t max_root_items = static_cast<std::size_t>(-1);
};

struct ParsedJson {
  nlohmann::json value;  // null when error is set
  std::optional<JsonParseError> error;
  bool too_many_root_items = false;  // the error is JsonLimits::max_root_items
};

// Parses `text` as exactly one JSON document (whitespace around it only).
// Refuses: malformed JSON and invalid UTF-8 in strings (nlohmann's
// messages, with line and column), a NUL byte anywhere, nesting deeper than
// `max_depth`, more values than `max_values` (or root array elements than
// `max_root_items`), a key twice in one object, and a number whose
// magnitude exceeds the largest double; each as soon as the parse gets
// there. Never throws.
ParsedJson ParseJson(std::string_view text, const JsonLimits& limits);
inline ParsedJson ParseJson(std::string_view text, std::size_t max_depth = kMaxJsonDepth) {
  return ParseJson(text, JsonLimits{.max_depth = max_depth});
}

}  // namespace tp
