#include "api/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>

namespace tp {
namespace {

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest Sha256(std::string_view text) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data());
  return d;
}

}  // namespace

bool BearerAuthorized(std::string_view authorization, std::span<const std::string> tokens) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view presented = authorization.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  const Digest given = Sha256(presented);
  bool ok = false;
  for (const std::string& token : tokens) {
    const Digest want = Sha256(token);
    // No early exit: every token is compared.
    ok |= CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
  }
  return ok && !presented.empty();
}

}  // namespace tp
