// Standard Webhooks signatures (https://www.standardwebhooks.com):
// webhook-signature = "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
// one such token per secret, space-separated, so receivers can rotate keys.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tp {

// The key bytes of a "whsec_<base64>" secret (the prefix is optional), or
// nullopt if it is not valid base64 or decodes to nothing.
std::optional<std::string> DecodeWebhookSecret(std::string_view secret);

// The webhook-signature header value for `body` sent as message `id` at
// `timestamp` (Unix seconds), signed with each key in `keys`.
std::string SignWebhook(std::string_view id, std::int64_t timestamp, std::string_view body,
                        std::span<const std::string> keys);

std::string Base64Encode(std::string_view bytes);
// Standard base64 with padding; nullopt on any invalid character.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace tp
