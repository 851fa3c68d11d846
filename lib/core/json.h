// Minimal, fast JSON writing for hot output paths (simulate writes millions of
// lines). Parsing and general documents use nlohmann::json instead.
#pragma once

#include <string>
#include <string_view>

namespace tp {

// Appends `value` as a JSON string literal, quotes included.
void AppendJsonString(std::string& out, std::string_view value);

}  // namespace tp
