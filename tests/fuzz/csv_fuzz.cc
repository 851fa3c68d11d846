// libFuzzer target: purchases as CSV (simulate/csv.h), as `simulate` and
// `touchpointctl import` read a file: CsvLineReader over the input written to
// a file, SplitCsvLine on each line, the first line as the header and the
// rest as rows through PurchaseRowParser.
//
// Beyond not crashing: the reader returns the lines a plain split at '\n'
// gives (CR before LF and a byte order mark on line 1 dropped), and Seek()
// back to a line reads it again; fields that split, quoted and joined, split
// to the same fields; every row the parser accepts passes
// planner/purchase_check.h.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "planner/purchase_check.h"
#include "simulate/csv.h"

namespace {

// The file the reader reads: in memory, so that rewriting it for every input
// costs no disk writes (ext4 flushes a file truncated and rewritten on close);
// the reader opens it by its /proc/self/fd path, as it would open any path.
int g_file = -1;
std::string g_path;

// The lines CsvLineReader promises, for inputs far below its kMaxLine.
std::vector<std::string> ExpectedLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string line(text.substr(0, nl));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lines.empty() && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
    lines.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string Joined(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : fields[i]) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out;
}

std::vector<std::string> ReadAll(std::string_view text) {
  FUZZ_CHECK(::ftruncate(g_file, 0) == 0);
  FUZZ_CHECK(::pwrite(g_file, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));

  tp::CsvLineReader reader(g_path);
  FUZZ_CHECK(reader.open_error().empty());
  FUZZ_CHECK(reader.size() == text.size());
  std::vector<std::string> lines;
  std::vector<std::uint64_t> offsets;
  std::string line;
  while (reader.Next(line) == tp::CsvLineReader::Read::kLine) {
    FUZZ_CHECK(reader.number() == lines.size() + 1);
    offsets.push_back(reader.offset());
    lines.push_back(line);
  }
  FUZZ_CHECK(reader.read_error().empty());
  FUZZ_CHECK(reader.position() == text.size());
  if (!lines.empty()) {
    // Back to the middle line, as an import resumes.
    const std::size_t i = lines.size() / 2;
    reader.Seek(offsets[i], i + 1);
    FUZZ_CHECK(reader.Next(line) == tp::CsvLineReader::Read::kLine);
    FUZZ_CHECK(reader.number() == i + 1 && reader.offset() == offsets[i]);
    FUZZ_CHECK(line == lines[i]);
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  g_file = ::memfd_create("csv_fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(g_file >= 0);
  g_path = "/proc/self/fd/" + std::to_string(g_file);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> lines = ReadAll(text);
  FUZZ_CHECK(lines == ExpectedLines(text));
  if (lines.empty()) return 0;

  const auto rules = tp::fuzz::BriefRules();
  std::vector<std::string> fields, again;
  std::optional<tp::PurchaseRowParser> parser;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (tp::SplitCsvLine(lines[i], fields)) continue;
    FUZZ_CHECK(!fields.empty());
    FUZZ_CHECK(!tp::SplitCsvLine(Joined(fields), again));
    FUZZ_CHECK(again == fields);
    if (i == 0) {
      auto header = tp::PurchaseRowParser::FromHeader(fields, *rules);
      if (header.ok()) parser.emplace(std::move(*header));
      continue;
    }
    tp::Purchase purchase;
    if (parser && !parser->Parse(fields, purchase)) {
      FUZZ_CHECK(!tp::CheckPurchase(purchase, *rules));
    }
  }
  return 0;
}
