#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>

#include "config/loader_sections.h"
#include "core/base64.h"
#include "core/url.h"

namespace tp::config {
namespace {

// API tokens shorter than this are refused: guessable.
constexpr std::size_t kMinTokenLength = 16;

}  // namespace

void Loader::LoadSinks(const YAML::Node& node) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node, "sinks must be a non-empty list of {name, type, ...}");
    return;
  }
  std::set<std::string> seen;
  for (const auto& item : node) {
    auto fields = Map(item, "a sink",
                      {"name", "type", "url", "secret_file", "timeout", "retry", "concurrency",
                       "ca_file", "tls_verify", "stream", "maxlen"});
    if (!fields) continue;
    Sink sink;
    if (auto v = Field(*fields, item, "name", "a sink", true); v.IsDefined()) {
      if (auto name = Name(v, "sink name")) {
        if (!seen.insert(*name).second) Error(v, "duplicate sink " + Quote(*name));
        sink.name = *name;
      }
    }
    const std::string what = "sink " + Quote(sink.name);
    auto type_node = Field(*fields, item, "type", what, true);
    if (!type_node.IsDefined()) {
      rules_.sinks.push_back(std::move(sink));
      continue;
    }
    const std::string type = type_node.IsScalar() ? type_node.Scalar() : std::string();
    if (type == "queue") {
      sink.type = Sink::Type::kQueue;
    } else if (type == "webhook") {
      sink.type = Sink::Type::kWebhook;
    } else if (type == "redis") {
      sink.type = Sink::Type::kRedis;
    } else {
      Error(type_node, "unknown sink type" + (type.empty() ? std::string() : " " + Quote(type)) +
                           " (expected queue, webhook or redis)");
      rules_.sinks.push_back(std::move(sink));  // known by name: no cascade of errors
      continue;
    }
    // Keys that belong to another type are mistakes, not decoration.
    static const std::map<std::string, Sink::Type> kOwner = {
        {"secret_file", Sink::Type::kWebhook}, {"retry", Sink::Type::kWebhook},
        {"concurrency", Sink::Type::kWebhook}, {"ca_file", Sink::Type::kWebhook},
        {"tls_verify", Sink::Type::kWebhook},  {"stream", Sink::Type::kRedis},
        {"maxlen", Sink::Type::kRedis}};
    for (const auto& [key, value] : *fields) {
      auto owner = kOwner.find(key);
      if ((owner != kOwner.end() && owner->second != sink.type) ||
          (key == "url" && sink.type == Sink::Type::kQueue)) {
        Error(value, "key " + Quote(key) + " does not apply to a " + type + " sink");
      }
    }
    if (auto v = Field(*fields, item, "timeout", what, false); v.IsDefined()) {
      if (sink.type == Sink::Type::kQueue) {
        Error(v, "key 'timeout' does not apply to a queue sink");
      } else if (auto d = ExactDuration(v, "timeout")) {
        sink.timeout = *d;
      }
    }
    if (sink.type == Sink::Type::kWebhook) LoadWebhook(*fields, item, what, sink);
    if (sink.type == Sink::Type::kRedis) LoadRedis(*fields, item, what, sink);
    rules_.sinks.push_back(std::move(sink));
  }
}

// A path in the config relative to the config file's directory.
std::string Loader::RelativeToConfig(const std::string& path) const {
  if (path.starts_with('/')) return path;
  const auto slash = file().rfind('/');
  return slash == std::string::npos ? path : file().substr(0, slash + 1) + path;
}

void Loader::LoadUrl(const Fields& fields, const YAML::Node& item, const std::string& what,
                     bool required, StatusOr<Url> (*parse)(std::string_view), Sink& sink) {
  auto v = Field(fields, item, "url", what, required);
  if (!v.IsDefined()) return;
  if (auto s = String(v, "url")) {
    auto url = parse(*s);
    if (url.ok()) {
      sink.url = *s;
    } else {
      Error(v, "url " + Quote(RedactedUrl(*s)) + " " + url.status().message());
    }
  }
}

void Loader::LoadWebhook(const Fields& fields, const YAML::Node& item, const std::string& what,
                         Sink& sink) {
  LoadUrl(fields, item, what, true, ParseHttpUrl, sink);
  if (auto v = Field(fields, item, "secret_file", what, true); v.IsDefined()) {
    if (auto s = String(v, "secret_file")) {
      sink.secret_file = RelativeToConfig(*s);
      LoadSecrets(v, sink);
    }
  }
  if (auto v = Field(fields, item, "concurrency", what, false); v.IsDefined()) {
    if (auto n = Integer(v, "concurrency", 1, 1024)) sink.concurrency = static_cast<int>(*n);
  }
  if (auto v = Field(fields, item, "ca_file", what, false); v.IsDefined()) {
    if (auto s = String(v, "ca_file")) {
      sink.ca_file = RelativeToConfig(*s);
      LoadCaFile(v, sink);
    }
  }
  if (auto v = Field(fields, item, "tls_verify", what, false); v.IsDefined()) {
    if (auto b = Bool(v, "tls_verify")) sink.tls_verify = *b;
  }
  // On a plain http:// url they would do nothing: https:// was meant, or
  // they were left from it, and the events go out unencrypted.
  if (auto url = ParseHttpUrl(sink.url); url.ok() && url->scheme == "http") {
    for (const char* key : {"ca_file", "tls_verify"}) {
      if (const YAML::Node v = item[key]; v.IsDefined()) {
        Error(v, std::string(key) + " applies to an https:// url; this sink's is http://, " +
                     "whose events go unencrypted");
      }
    }
  }
  if (auto v = Field(fields, item, "retry", what, false); v.IsDefined()) {
    auto retry = Map(v, what + " retry", {"initial", "max_delay", "max_attempts"});
    if (!retry) return;
    if (auto t = Field(*retry, v, "initial", "retry", false); t.IsDefined()) {
      if (auto d = ExactDuration(t, "retry initial")) sink.retry.initial = *d;
    }
    auto max_delay = Field(*retry, v, "max_delay", "retry", false);
    if (max_delay.IsDefined()) {
      if (auto d = ExactDuration(max_delay, "retry max_delay")) sink.retry.max_delay = *d;
    }
    if (auto t = Field(*retry, v, "max_attempts", "retry", false); t.IsDefined()) {
      if (auto n = Integer(t, "retry max_attempts", 1, 1000)) {
        sink.retry.max_attempts = static_cast<int>(*n);
      }
    }
    if (sink.retry.max_delay < sink.retry.initial) {
      Error(max_delay.IsDefined() ? max_delay : v,
            "retry max_delay must be at least retry initial");
    }
  }
}

// Reads a file of secrets now (at start and at every reload): one per
// line, several during a rotation; blank lines and '#' comments are
// skipped. `take` gets each trimmed line and says whether it is valid; the
// first invalid one is reported by its number only, never echoed.
// `what` names the key ("secret_file"), `noun` one line's thing
// ("secret"), `expected` what a line must be.
void Loader::LoadSecretLines(const YAML::Node& node, const std::string& path, const char* what,
                             const char* noun, const std::string& expected,
                             const std::function<bool(std::string_view)>& take) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error(node,
          std::string("cannot read ") + what + " " + Quote(path) + ": " + std::strerror(errno));
    return;
  }
  std::string line;
  int number = 0, taken = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    if (!take(std::string_view(line).substr(first, last - first + 1))) {
      Error(node, std::string(what) + " " + Quote(path) + " line " + std::to_string(number) +
                      " is not " + expected);
      return;
    }
    ++taken;
  }
  if (taken == 0) Error(node, std::string(what) + " " + Quote(path) + " holds no " + noun);
}

namespace {

// Why the PEM text is not one or more certificates OpenSSL reads (as
// Asio's add_certificate_authority does when the worker is made), or "".
std::string PemCertificatesProblem(const std::string& pem) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return "out of memory";
  ERR_clear_error();
  for (int count = 0;; ++count) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert != nullptr) {
      X509_free(cert);
      continue;
    }
    // The first error: the reason (a damaged certificate's ASN.1 one), not
    // the generic one PEM stacks on it; at the end, PEM_R_NO_START_LINE.
    const unsigned long e = ERR_peek_error();
    const bool ended = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    char text[256] = "";
    ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    if (ended && count > 0) return "";
    if (ended) return "holds no PEM certificate (-----BEGIN CERTIFICATE----- ...)";
    return "certificate " + std::to_string(count + 1) + " cannot be read: " + text;
  }
}

}  // namespace

// Reads the CA file now (at start and at every reload, so that a bundle
// replaced at the same path is a change the reload sees): a regular file
// of at most 4 MiB (a system bundle is about 200 KiB) whose certificates
// OpenSSL reads, so that a damaged one is an error at its key, not a
// failed start.
void Loader::LoadCaFile(const YAML::Node& node, Sink& sink) {
  constexpr std::size_t kMaxCaFileBytes = 4 << 20;
  const std::string& path = sink.ca_file;
  // Opened without waiting (a FIFO's writer), then looked at as opened:
  // not a FIFO or a device, on which a reload (on the daemon's loop) would
  // wait, or read for ever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return Error(node, "cannot read ca_file " + Quote(path) + ": " + std::strerror(errno));
  struct Closing {
    int fd;
    ~Closing() { ::close(fd); }
  } closing{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(node, "ca_file " + Quote(path) + " is not a regular file; name a PEM file");
  }
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxCaFileBytes) {
    return Error(node, "ca_file " + Quote(path) + " is over 4 MiB");
  }
  // Its size as it is now; a file growing meanwhile is read up to that.
  std::string pem(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < pem.size()) {
    const ssize_t n = ::read(fd, pem.data() + got, pem.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Error(node, "cannot read ca_file " + Quote(path) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  pem.resize(got);
  if (std::string problem = PemCertificatesProblem(pem); !problem.empty()) {
    return Error(node, "ca_file " + Quote(path) + " " + problem);
  }
  sink.ca_pem = std::move(pem);
}

void Loader::LoadSecrets(const YAML::Node& node, Sink& sink) {
  LoadSecretLines(node, sink.secret_file, "secret_file", "secret", "a whsec_<base64> secret",
                  [&](std::string_view line) {
                    auto key = DecodeWebhookSecret(line);
                    if (key) sink.secrets.push_back(std::move(*key));
                    return key.has_value();
                  });
}

void Loader::LoadTokens(const YAML::Node& node) {
  LoadSecretLines(
      node, rules_.auth_token_file, "token_file", "token",
      "a token (at least " + std::to_string(kMinTokenLength) + " printable characters, no spaces)",
      [&](std::string_view line) {
        const bool ok =
            line.size() >= kMinTokenLength && std::all_of(line.begin(), line.end(), [](char c) {
              return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
            });
        if (ok) rules_.auth_tokens.emplace_back(line);
        return ok;
      });
}

void Loader::LoadRedis(const Fields& fields, const YAML::Node& item, const std::string& what,
                       Sink& sink) {
  sink.url = "redis://127.0.0.1:6379/0";
  LoadUrl(fields, item, what, false, ParseRedisUrl, sink);
  sink.stream = "touchpoints";
  if (auto v = Field(fields, item, "stream", what, false); v.IsDefined()) {
    if (auto s = String(v, "stream")) sink.stream = *s;
  }
  if (auto v = Field(fields, item, "maxlen", what, false); v.IsDefined()) {
    if (auto n = Integer(v, "maxlen", 1, std::int64_t{1} << 40)) sink.maxlen = *n;
  }
}

}  // namespace tp::config
