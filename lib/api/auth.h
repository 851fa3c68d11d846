// Bearer-token authentication of the /v1/ API.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace tp {

// Whether `authorization` (the header's value) is "Bearer <token>" for one of
// `tokens`. The scheme is matched case-insensitively. The comparison takes
// the same time whichever token matches, if any, and however much of one a
// guess gets right: both sides are hashed (SHA-256) and every token's digest
// is compared with CRYPTO_memcmp.
bool BearerAuthorized(std::string_view authorization, std::span<const std::string> tokens);

}  // namespace tp
