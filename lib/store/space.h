// Room on the disk: what the daemon measures to keep working when the disk
// holding its database fills (docs/operations.md, "A full disk").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace tp {

// What writes to a database can still use.
struct StorageSpace {
  std::uint64_t fs_free = 0;  // bytes an unprivileged writer may still take on its filesystem
  std::uint64_t fs_size = 0;  // the filesystem's size
  // Free pages inside the database file: reused before the file grows.
  std::uint64_t free_pages = 0;
  // database_max_size minus the file's size, when the config caps it.
  std::optional<std::uint64_t> cap_left;
  std::optional<std::uint64_t> cap;  // database_max_size itself

  // The bytes new rows can take: the filesystem's (or the cap's, if
  // smaller) plus the free pages.
  std::uint64_t Room() const;
  // What the daemon keeps in reserve for this database: an eighth of the
  // filesystem (or of the cap), at most 8 MiB.
  std::uint64_t Reserve() const;
};

// statvfs() of the folder holding `path`; only the filesystem's fields set.
StatusOr<StorageSpace> MeasureFilesystem(const std::string& path);

// A file of reserved bytes beside the database ("<database>-reserve"). The
// daemon keeps it while the disk has room and deletes it the moment the disk
// fills, so that acks, leases and delivery records, which make room, can
// still be written (a WAL whose file is too small for them needs new disk
// space too). Not thread-safe.
class DiskReserve {
 public:
  explicit DiskReserve(std::string path) : path_(std::move(path)) {}
  // Makes the file hold up to `bytes`, taken with fallocate() so the bytes
  // are really the file's; takes less when the disk has less to give.
  // Returns what it holds.
  std::uint64_t Fill(std::uint64_t bytes);
  // Deletes the file; what it held.
  std::uint64_t Release();
  std::uint64_t held() const { return held_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::uint64_t held_ = 0;
};

}  // namespace tp
