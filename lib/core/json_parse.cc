#include "core/json_parse.h"

#include <utility>

namespace tp {
namespace {

using nlohmann::json;

// nlohmann's SAX events built into a document as its own DOM parser does,
// with the checks ParseJson() promises. Returning false stops the parse.
class Builder {
 public:
  explicit Builder(const JsonLimits& limits) : limits_(limits) {}

  bool null() { return Put(nullptr); }
  bool boolean(bool v) { return Put(v); }
  bool number_integer(json::number_integer_t v) { return Put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Put(v); }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return Put(v); }
  bool string(std::string& v) { return Put(std::move(v)); }
  bool binary(json::binary_t& /*v*/) { return Fail("binary values are not JSON"); }

  bool start_object(std::size_t /*elements*/) { return Open(json::value_t::object); }
  bool start_array(std::size_t /*elements*/) { return Open(json::value_t::array); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(std::string& k) {
    Frame& top = stack_.back();
    if (top.value->contains(k)) {
      top.key = std::move(k);
      return Fail("duplicate key '" + top.key + "'");
    }
    top.key = std::move(k);
    return true;
  }

  template <typename Exception>
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/, const Exception& e) {
    if (error_) return false;  // ours, reported already
    if (e.id == 406) return Fail("a number out of range (beyond ±1.8e308)");
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    if (auto pos = what.find("] "); pos != std::string::npos) what.erase(0, pos + 2);
    error_ = JsonParseError{"malformed JSON: " + what, {}};
    return false;
  }

  json& root() { return root_; }
  std::optional<JsonParseError>& error() { return error_; }
  bool too_many_root_items() const { return too_many_root_items_; }

 private:
  struct Frame {
    json* value;
    std::string key;  // objects: the key whose value comes next
  };

  bool Open(json::value_t type) {
    if (stack_.size() >= limits_.max_depth) {
      return Fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    if (!Counted()) return false;
    json* value = Place(json(type));
    stack_.push_back({value, {}});
    return true;
  }

  // One more value, within the limits.
  bool Counted() {
    if (stack_.size() == 1 && stack_[0].value->is_array() &&
        stack_[0].value->size() >= limits_.max_root_items) {
      too_many_root_items_ = true;
      return Fail("more than " + std::to_string(limits_.max_root_items) + " items");
    }
    if (++values_ > limits_.max_values) {
      return Fail("more than " + std::to_string(limits_.max_values) +
                  " values (numbers, strings, arrays, objects...) in one document");
    }
    return true;
  }

  bool Close() {
    stack_.pop_back();
    return true;
  }

  template <typename T>
  bool Put(T&& v) {
    if (!Counted()) return false;
    Place(json(std::forward<T>(v)));
    return true;
  }

  json* Place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& top = stack_.back();
    if (top.value->is_array()) {
      top.value->push_back(std::move(v));
      return &top.value->back();
    }
    json& slot = (*top.value)[top.key];
    slot = std::move(v);
    return &slot;
  }

  // An error at the value about to be placed: its path is the stack's.
  bool Fail(std::string message) {
    JsonParseError e{std::move(message), {}};
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      if (f.value->is_array()) {
        // An outer array holds the element being built already.
        const bool top = i + 1 == stack_.size();
        e.path.push_back({f.value->size() - (top ? 0 : 1), {}});
      } else {
        e.path.push_back({std::nullopt, f.key});
      }
    }
    error_ = std::move(e);
    return false;
  }

  const JsonLimits limits_;
  std::size_t values_ = 0;
  bool too_many_root_items_ = false;
  json root_;
  std::vector<Frame> stack_;
  std::optional<JsonParseError> error_;
};

}  // namespace

std::string JsonParseError::PathText() const {
  std::string out;
  for (const JsonPathPart& p : path) {
    if (p.index) {
      out += '[' + std::to_string(*p.index) + ']';
    } else {
      if (!out.empty()) out += '.';
      out += p.key;
    }
  }
  return out;
}

ParsedJson ParseJson(std::string_view text, const JsonLimits& limits) {
  ParsedJson result;
  // nlohmann's lexer takes a NUL for the end of the input.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    result.error =
        JsonParseError{"malformed JSON: a NUL byte at offset " + std::to_string(nul), {}};
    return result;
  }
  Builder builder(limits);
  try {
    json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception& e) {
    // Only allocation failures are left to throw.
    result.error = JsonParseError{std::string("cannot parse: ") + e.what(), {}};
    return result;
  }
  if (builder.error()) {
    result.error = std::move(builder.error());
    result.too_many_root_items = builder.too_many_root_items();
    return result;
  }
  result.value = std::move(builder.root());
  return result;
}

}  // namespace tp
