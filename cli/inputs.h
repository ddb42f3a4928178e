// The inputs of a command: files, directories, globs or "-" (an Arrow IPC stream on stdin),
// resolved to a list of files, each opened as a stream of record batches in bounded memory.
// Every failure is an InputError naming the file (and the row group or batch where it can).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace arrow_zerobus::cli {

enum class InputFormat { kParquet, kIpcFile, kIpcStream, kCsv, kJsonLines };
const char* InputFormatName(InputFormat f);

struct InputFile {
  std::string path;  // as given or found ("-" for stdin)
  InputFormat format;
  int64_t size_bytes = -1;  // -1: unknown (stdin)
};

struct InputOptions {
  int64_t batch_rows = 64 * 1024;
  // Types for CSV / JSON Lines columns (otherwise inferred), e.g. from --schema-from.
  std::shared_ptr<arrow::Schema> schema;
  // Drop the columns a quarantine file adds (_source_file, _source_row, _error, _in_doubt).
  bool drop_quarantine_columns = false;
};

// An opened input: batches of at most batch_rows rows, validated, in the file's row order.
class InputReader {
 public:
  virtual ~InputReader() = default;
  virtual const InputFile& file() const = 0;
  virtual std::shared_ptr<arrow::Schema> schema() const = 0;
  // Rows in the file when the format says so without reading it (Parquet, IPC file).
  virtual std::optional<int64_t> known_rows() const = 0;
  // The next batch, or nullptr at the end.
  virtual arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next() = 0;
};

// "Input error: <path>: <what>": the label every input failure carries.
arrow::Status InputError(const std::string& path, const std::string& what);

// Files, directories (their files with a known extension, sorted, hidden and _-prefixed names
// skipped) and glob patterns, in the order given; "-" is stdin (an Arrow IPC stream).
arrow::Result<std::vector<InputFile>> ResolveInputs(const std::vector<std::string>& args);

// Opens `file`, skipping its first `skip_rows` rows (a resumed send; whole Parquet row groups
// are skipped without reading them).
arrow::Result<std::unique_ptr<InputReader>> OpenInput(const InputFile& file,
                                                      const InputOptions& options,
                                                      int64_t skip_rows = 0);

// The schema every input must share: the first file's; a later file with other columns or types
// is an InputError naming that file and the first column that differs.
arrow::Status CheckSameSchema(const arrow::Schema& expected, const std::string& expected_path,
                              const arrow::Schema& actual, const std::string& actual_path);

// The schema of a Parquet or Arrow IPC file (for --schema-from).
arrow::Result<std::shared_ptr<arrow::Schema>> ReadSchemaOf(const std::string& path);

// The columns a quarantine file adds to the input's own.
inline constexpr const char* kQuarantineColumns[] = {"_source_file", "_source_row", "_error",
                                                     "_in_doubt"};

}  // namespace arrow_zerobus::cli
