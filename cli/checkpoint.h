// The --checkpoint file: per input file, how many leading rows have a final outcome (landed, or
// failed and safely in the quarantine file). A re-run with the same checkpoint starts each file
// after them, so those rows are never sent again. Written atomically (temp file + rename).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <arrow/result.h>
#include <arrow/status.h>

namespace arrow_zerobus::cli {

struct FileProgress {
  int64_t rows_done = 0;
  bool complete = false;
  int64_t size_bytes = -1;  // of the input when the checkpoint was written
};

class Checkpoint {
 public:
  // A missing file is an empty checkpoint; a malformed one is an error naming it.
  static arrow::Result<Checkpoint> Load(const std::string& path);

  // The entry of an input (by its absolute path), or nullptr.
  const FileProgress* Find(const std::string& input) const;
  void Set(const std::string& input, const FileProgress& progress);
  arrow::Status Save() const;
  const std::string& path() const { return path_; }

  // The key an input is stored under.
  static std::string KeyOf(const std::string& input_path);

 private:
  std::string path_;
  std::map<std::string, FileProgress> files_;
};

}  // namespace arrow_zerobus::cli
