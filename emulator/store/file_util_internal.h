// Private: the POSIX file operations the Delta writer needs for durability.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

namespace arrow_zerobus::emulator::internal {

// mkdir -p; fsyncs each directory it creates and its parent when `fsync` is set.
arrow::Status MakeDirs(const std::string& path, bool fsync);
// Creates `path` (which must not exist), writes `data`, fsyncs it (if `fsync`).
arrow::Status WriteNewFile(const std::string& path, std::string_view data, bool fsync);
// Makes `path` appear atomically with `data` and never replaces an existing file: writes a
// temporary file in `tmp_dir`, fsyncs it, hard-links it to `path` (EEXIST -> AlreadyExists) and
// fsyncs the directory of `path`.
arrow::Status PublishFileNoReplace(const std::string& tmp_dir, const std::string& path,
                                   std::string_view data, bool fsync);
arrow::Status FsyncDir(const std::string& path);
arrow::Result<std::string> ReadFile(const std::string& path);
// Names in a directory (no "." / ".."); IOError if it cannot be read.
arrow::Result<std::vector<std::string>> ListDir(const std::string& path);
bool IsDirectory(const std::string& path);
bool FileExists(const std::string& path);
// A random (version 4) UUID.
std::string RandomUuid();
int64_t NowMillis();

// An exclusive advisory lock on `path` (created if missing) held until destruction.
class DirLock {
 public:
  static arrow::Result<std::unique_ptr<DirLock>> Acquire(const std::string& path);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace arrow_zerobus::emulator::internal
