#include "store/values.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace tp::sql {

TouchpointState StateFrom(int code) {
  return code >= 0 && code <= StateCode(TouchpointState::kDead) ? static_cast<TouchpointState>(code)
                                                                : TouchpointState::kDead;
}

std::string RandomHex(std::size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness for a receipt");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out += kHex[buf[i] >> 4];
    out += kHex[buf[i] & 15];
  }
  return out;
}

std::optional<Receipt> SplitReceipt(std::string_view receipt) {
  const auto dot = receipt.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 18 || receipt[0] == '0' ||
      dot + 1 == receipt.size()) {
    return std::nullopt;
  }
  Receipt r{0, receipt.substr(0, dot), receipt.substr(dot + 1)};
  for (char c : r.id_digits) {
    if (c < '0' || c > '9') return std::nullopt;
    r.id = r.id * 10 + (c - '0');
  }
  for (char c : r.token) {
    if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) return std::nullopt;
  }
  return r;
}

const Zone* ZoneCache::Named(std::string_view name) {
  auto it = zones_.find(name);
  if (it != zones_.end()) return it->second;
  const std::string key(name);
  const Zone* zone = FindZone(key);
  if (zone == nullptr) zone = UtcZone();
  zones_.emplace(key, zone);
  return zone;
}

}  // namespace tp::sql
