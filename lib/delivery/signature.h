// Standard Webhooks signatures (https://www.standardwebhooks.com):
// webhook-signature = "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
// one such token per secret, space-separated, so receivers can rotate keys.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/base64.h"

namespace tp {

// The webhook-signature header value for `body` sent as message `id` at
// `timestamp` (Unix seconds), signed with each key in `keys`.
std::string SignWebhook(std::string_view id, std::int64_t timestamp, std::string_view body,
                        std::span<const std::string> keys);

}  // namespace tp
