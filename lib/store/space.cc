#include "store/space.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace tp {

std::uint64_t StorageSpace::Room() const {
  const std::uint64_t disk = cap_left ? std::min(fs_free, *cap_left) : fs_free;
  return disk + free_pages;
}

std::uint64_t StorageSpace::Reserve() const {
  constexpr std::uint64_t kMost = 8u << 20;
  const std::uint64_t base = cap ? std::min(*cap, fs_size) : fs_size;
  return std::min(kMost, base / 8);
}

StatusOr<StorageSpace> MeasureFilesystem(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  struct statvfs fs {};
  if (::statvfs(folder.c_str(), &fs) != 0) {
    return Status::Error("cannot measure the disk holding " + folder.string() + ": " +
                         std::strerror(errno));
  }
  StorageSpace space;
  space.fs_free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  space.fs_size = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
  return space;
}

std::uint64_t DiskReserve::Fill(std::uint64_t bytes) {
  if (held_ >= bytes) return held_;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return held_;
  // In steps, so a disk with less than `bytes` left still gives what it has.
  constexpr std::uint64_t kStep = 64 * 1024;
  std::uint64_t have = held_;
  while (have < bytes) {
    const std::uint64_t step = std::min(kStep, bytes - have);
    if (::posix_fallocate(fd, static_cast<off_t>(have), static_cast<off_t>(step)) != 0) break;
    have += step;
  }
  // What did not fit stays off the disk: the file is exactly what it holds.
  if (::ftruncate(fd, static_cast<off_t>(have)) != 0) have = held_;
  ::close(fd);
  held_ = have;
  return held_;
}

std::uint64_t DiskReserve::Release() {
  const std::uint64_t was = held_;
  ::unlink(path_.c_str());
  held_ = 0;
  return was;
}

}  // namespace tp
