// Base64 (RFC 4648, with padding) and the keys of Standard Webhooks
// secrets ("whsec_<base64>"): the config checks a secret file's keys, the
// dispatcher signs with them (delivery/signature.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tp {

std::string Base64Encode(std::string_view bytes);
// Standard base64 with padding; nullopt on any invalid character.
std::optional<std::string> Base64Decode(std::string_view text);

// The key bytes of a "whsec_<base64>" secret (the prefix is optional), or
// nullopt if it is not valid base64 or decodes to nothing.
std::optional<std::string> DecodeWebhookSecret(std::string_view secret);

}  // namespace tp
