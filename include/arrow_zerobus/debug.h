// Debug files: what a wrapper sent (or, writer-disabled, would have sent), per table, as
//  - Arrow IPC stream files (`.arrows`), readable by pyarrow / DuckDB / any Arrow reader, and
//  - protobuf files (`.pb`): each record as a varint length followed by the record's bytes, with
//    the serialized DescriptorProto beside it (`.desc`, same name stem).
// Files rotate by record count and by size, are named so they never collide, and only the
// table's own files count for retention. See docs/debug-files.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>
#include <google/protobuf/descriptor.pb.h>

namespace arrow_zerobus {

struct WrapperConfiguration;
struct EncodedBatch;

enum class DebugFormat : int8_t { kArrow, kProtobuf };

struct DebugWriterOptions {
  std::string output_dir;
  // Catalog.schema.table (or fewer parts); only [A-Za-z0-9_.] (it becomes part of file names).
  std::string table_name;
  bool arrow_enabled = true;
  bool protobuf_enabled = true;
  // Buffered bytes reach the files at least this often (background flusher thread).
  std::chrono::milliseconds flush_interval{5000};
  // A file is closed once it holds this many bytes (so it exceeds it by less than one batch).
  std::optional<int64_t> max_file_size;
  // A file holds at most this many rows / records; batches are split across files to keep it.
  std::optional<int64_t> max_records_per_file;
  // Per format, only this table's files; none = keep all. The open file counts.
  std::optional<int64_t> max_files_retained = 10;

  static DebugWriterOptions Defaults() { return DebugWriterOptions(); }
  // The debug_* options of a configuration. Nothing else is taken from it (no credentials).
  static DebugWriterOptions FromConfig(const WrapperConfiguration& config);
};

// A parsed debug file name: "<table>--<YYYYMMDDTHHMMSSZ>--<sequence>.<arrows|pb|desc>".
struct DebugFileName {
  std::string table;
  std::string timestamp;
  int64_t sequence = 0;
  std::string extension;  // "arrows", "pb" or "desc"
};
// nullopt for names that are not debug files.
std::optional<DebugFileName> ParseDebugFileName(std::string_view file_name);
// The data files (.arrows or .pb) of exactly this table in `dir`, oldest first (by sequence).
arrow::Result<std::vector<std::string>> ListDebugFiles(const std::string& dir,
                                                       std::string_view table_name,
                                                       DebugFormat format);

struct DebugWriterStats {
  int64_t arrow_files = 0;      // files opened
  int64_t protobuf_files = 0;
  int64_t arrow_rows = 0;
  int64_t protobuf_records = 0;
  int64_t bytes_written = 0;
  int64_t files_deleted = 0;    // by retention
  int64_t flushes = 0;          // flushes that had buffered data
};

// Writes one table's debug files. Thread-safe: every method may be called from several threads;
// writes are serialized. A background thread flushes buffered data every flush_interval.
class DebugWriter {
 public:
  // Creates output_dir if needed; errors name the option or the directory.
  static arrow::Result<std::unique_ptr<DebugWriter>> Open(DebugWriterOptions options);
  ~DebugWriter();  // Close(); errors are dropped (call Close() to see them)

  DebugWriter(const DebugWriter&) = delete;
  DebugWriter& operator=(const DebugWriter&) = delete;

  // Appends a batch to the current .arrows file (a new file when the schema changes).
  // No-op when Arrow output is off.
  arrow::Status WriteArrow(const arrow::RecordBatch& batch);
  // Appends records (each one serialized message of `descriptor`) to the current .pb file
  // (a new file when the descriptor changes). No-op when protobuf output is off.
  arrow::Status WriteProtobuf(const google::protobuf::DescriptorProto& descriptor,
                              const std::vector<std::string_view>& records);
  arrow::Status WriteProtobuf(const google::protobuf::DescriptorProto& descriptor,
                              const EncodedBatch& encoded);

  // Pushes buffered bytes to the files. Afterwards an open .arrows file reads as a complete
  // stream of every batch written so far (Arrow readers stop at end of file), and an open .pb
  // file as every record written so far; closing adds the end-of-stream marker.
  arrow::Status Flush();
  // Closes the current files (end-of-stream marker on .arrows) so the next write starts new
  // ones. Retention applies.
  arrow::Status Rotate();
  // Closes everything and stops the flusher; later writes fail. Idempotent.
  arrow::Status Close();

  DebugWriterStats stats() const;
  const DebugWriterOptions& options() const;

 private:
  struct Impl;
  explicit DebugWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads an Arrow debug file (closed, rotated, or open and flushed) as one table.
arrow::Result<std::shared_ptr<arrow::Table>> ReadArrowDebugFile(const std::string& path);

struct ProtobufDebugFile {
  google::protobuf::DescriptorProto descriptor;  // from the .desc file beside it
  std::vector<std::string> records;              // each one serialized message
};
// Reads a .pb debug file and its .desc. A truncated record or length is an Invalid error naming
// the file, the record index and the byte offset.
arrow::Result<ProtobufDebugFile> ReadProtobufDebugFile(const std::string& path);

}  // namespace arrow_zerobus
