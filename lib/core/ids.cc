#include "core/ids.h"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace tp {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Fetching the digest once avoids OpenSSL 3's per-call implicit fetch.
const EVP_MD* Sha256() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

std::string TouchpointId(std::string_view order_id, std::string_view cadence,
                         std::string_view step) {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  static constexpr char kSeparator = '\x1f';
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (Sha256() == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex(ctx.get(), Sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), order_id.data(), order_id.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), &kSeparator, 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), cadence.data(), cadence.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), &kSeparator, 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), step.data(), step.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    // Only an OpenSSL installation without SHA-256 gets here.
    throw std::runtime_error("SHA-256 is unavailable in this OpenSSL");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "tp_";
  id.reserve(3 + 32);
  for (int i = 0; i < 16; ++i) {
    id.push_back(kHex[digest[i] >> 4]);
    id.push_back(kHex[digest[i] & 0xF]);
  }
  return id;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 is unavailable in this OpenSSL");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace tp
