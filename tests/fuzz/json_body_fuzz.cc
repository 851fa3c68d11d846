// libFuzzer target: core/json_parse.h's ParseJson, which reads every JSON
// request body (lease, ack, replay; purchases through purchase_json.h).
//
// Beyond not crashing: an accepted document is exactly as deep as the depth
// limit lets through, dumps to text that parses back to an equal document,
// and is what nlohmann's own parser makes of the same text (ParseJson only
// refuses more, never reads differently).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json_parse.h"
#include "fuzz_support.h"

namespace {

// Containers inside each other, counted as json_parse.h counts them.
std::size_t Depth(const nlohmann::json& v) {
  if (!v.is_structured()) return 0;
  std::size_t inner = 0;
  for (const auto& child : v) inner = std::max(inner, Depth(child));
  return inner + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const tp::ParsedJson parsed = tp::ParseJson(text);
  if (parsed.error) {
    FUZZ_CHECK(!parsed.error->message.empty());
    FUZZ_CHECK(parsed.value.is_null());
    (void)parsed.error->PathText();
    return 0;
  }
  const std::size_t depth = Depth(parsed.value);
  FUZZ_CHECK(depth <= tp::kMaxJsonDepth);
  FUZZ_CHECK(!tp::ParseJson(text, depth).error);
  if (depth > 0) FUZZ_CHECK(tp::ParseJson(text, depth - 1).error);

  const std::string dumped = parsed.value.dump();
  const tp::ParsedJson again = tp::ParseJson(dumped);
  FUZZ_CHECK(!again.error);
  FUZZ_CHECK(again.value == parsed.value);
  FUZZ_CHECK(again.value.dump() == dumped);

  FUZZ_CHECK(nlohmann::json::accept(text.begin(), text.end()));
  FUZZ_CHECK(nlohmann::json::parse(text.begin(), text.end()) == parsed.value);
  return 0;
}
