#include "web/page.h"

#include <openssl/sha.h>

#include <stdexcept>

#include "core/base64.h"
#include "web/assets.h"

namespace tp {
namespace {

std::string Sha256Source(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return "'sha256-" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest)) + "'";
}

void AppendEscapedText(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
}

}  // namespace

std::string SelfContainedPage(std::string_view title, std::string_view data_json,
                              std::initializer_list<std::string_view> assets) {
  std::string styles, scripts, style_hashes, script_hashes;
  for (std::string_view name : assets) {
    const Asset* asset = FindAsset(name);
    // The names are the program's own: a missing one is a build mistake.
    if (asset == nullptr) throw std::logic_error("no embedded asset " + std::string(name));
    const bool style = name.ends_with(".css");
    (style ? style_hashes : script_hashes) += " " + Sha256Source(asset->body);
    std::string& into = style ? styles : scripts;
    into += style ? "<style>" : "<script>";
    into += asset->body;
    into += style ? "</style>\n" : "</script>\n";
  }
  std::string page;
  page.reserve(data_json.size() + styles.size() + scripts.size() + 1024);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src";
  page += script_hashes;
  page += "; style-src";
  page += style_hashes;
  page += "; img-src data:\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  AppendEscapedText(page, title);
  page += "</title>\n";
  page += styles;
  page += "</head>\n<body>\n<script type=\"application/json\" id=\"tp-data\">";
  // JSON has '<' only inside strings, where \u003c means the same: no
  // "</script>" in the data can end the element early.
  for (char c : data_json) {
    if (c == '<') {
      page += "\\u003c";
    } else {
      page.push_back(c);
    }
  }
  page += "</script>\n";
  page += scripts;
  page += "</body>\n</html>\n";
  return page;
}

}  // namespace tp
