#include "store/file_util_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>

namespace arrow_zerobus::emulator::internal {

namespace {

arrow::Status Errno(const std::string& what, const std::string& path, int err = errno) {
  return arrow::Status::IOError(what, " '", path, "': ", std::strerror(err));
}

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

arrow::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status FsyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync directory", path, err);
  return arrow::Status::OK();
}

arrow::Status MakeDirs(const std::string& path, bool fsync) {
  if (path.empty() || IsDirectory(path)) return arrow::Status::OK();
  std::string parent = Parent(path);
  if (parent != path) ARROW_RETURN_NOT_OK(MakeDirs(parent, fsync));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("cannot create directory", path);
  if (fsync) ARROW_RETURN_NOT_OK(FsyncDir(parent));
  return arrow::Status::OK();
}

arrow::Status WriteNewFile(const std::string& path, std::string_view data, bool fsync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", path);
  arrow::Status st = WriteAll(fd, data, path);
  if (st.ok() && fsync && ::fsync(fd) != 0) st = Errno("cannot fsync", path);
  if (::close(fd) != 0 && st.ok()) st = Errno("cannot close", path);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

arrow::Status PublishFileNoReplace(const std::string& tmp_dir, const std::string& path,
                                   std::string_view data, bool fsync) {
  std::string tmp = tmp_dir + "/.tmp-commit-" + RandomUuid();
  ARROW_RETURN_NOT_OK(WriteNewFile(tmp, data, fsync));
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return arrow::Status::AlreadyExists("'", path, "' already exists");
    return Errno("cannot link", path, err);
  }
  if (fsync) ARROW_RETURN_NOT_OK(FsyncDir(Parent(path)));
  return arrow::Status::OK();
}

arrow::Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Errno("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

arrow::Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return Errno("cannot list", path);
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string RandomUuid() {
  static std::mutex mu;
  static std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), static_cast<unsigned>(::getpid()),
                      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count())};
    return std::mt19937_64(seq);
  }();
  uint64_t hi, lo;
  {
    std::lock_guard<std::mutex> lock(mu);
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  char out[37];
  std::snprintf(out, sizeof(out), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return out;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

arrow::Result<std::unique_ptr<DirLock>> DirLock::Acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot open lock file", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return arrow::Status::IOError("data directory is in use by another process (lock '", path, "')");
    }
    return Errno("cannot lock", path, err);
  }
  return std::unique_ptr<DirLock>(new DirLock(fd));
}

DirLock::~DirLock() { ::close(fd_); }

}  // namespace arrow_zerobus::emulator::internal
