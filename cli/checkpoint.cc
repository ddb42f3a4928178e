#include "checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace arrow_zerobus::cli {

namespace fs = std::filesystem;

arrow::Result<Checkpoint> Checkpoint::Load(const std::string& path) {
  Checkpoint c;
  c.path_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) return c;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_object()) {
    return arrow::Status::Invalid("--checkpoint: '", path,
                                  "' is not a checkpoint written by zerobus-arrow");
  }
  for (auto& [key, v] : j["files"].items()) {
    if (!v.is_object() || !v.contains("rows_done") || !v["rows_done"].is_number_integer()) {
      return arrow::Status::Invalid("--checkpoint: '", path, "': bad entry for '", key, "'");
    }
    FileProgress p;
    p.rows_done = v["rows_done"].get<int64_t>();
    p.complete = v.value("complete", false);
    p.size_bytes = v.value("size_bytes", int64_t{-1});
    c.files_[key] = p;
  }
  return c;
}

const FileProgress* Checkpoint::Find(const std::string& input) const {
  auto it = files_.find(KeyOf(input));
  return it == files_.end() ? nullptr : &it->second;
}

void Checkpoint::Set(const std::string& input, const FileProgress& progress) {
  files_[KeyOf(input)] = progress;
}

std::string Checkpoint::KeyOf(const std::string& input_path) {
  std::error_code ec;
  auto p = fs::weakly_canonical(input_path, ec);
  return ec ? input_path : p.string();
}

arrow::Status Checkpoint::Save() const {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [key, p] : files_) {
    files[key] = {{"rows_done", p.rows_done}, {"complete", p.complete},
                  {"size_bytes", p.size_bytes}};
  }
  const std::string text = nlohmann::json{{"version", 1}, {"files", files}}.dump(2) + "\n";
  // A crash leaves either the old checkpoint or the new one, never a torn file.
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return arrow::Status::IOError("--checkpoint: cannot write '", tmp, "'");
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return arrow::Status::IOError("--checkpoint: cannot write '", path_, "'");
  }
  return arrow::Status::OK();
}

}  // namespace arrow_zerobus::cli
