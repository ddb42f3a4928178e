// Helpers for the wrapper tests: an in-process emulator on loopback, configurations with tiny
// timeouts and backoffs, Arrow rows, and reading the Delta table back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/result.h"
#include "arrow_zerobus/wrapper.h"
#include "server/emulator.h"

namespace arrow_zerobus::testing {

inline constexpr const char* kClientId = "wrapper-client";
inline constexpr const char* kClientSecret = "wrapper-secret-5d1e";

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Delta sink in `dir` (fast commits, no fsync), principal kClientId; started on free ports.
std::unique_ptr<emulator::Emulator> StartEmulator(const std::string& dir,
                                                  std::vector<emulator::TableDeclaration> tables = {},
                                                  bool strict = false);

// Small timeouts, tiny backoffs, no jitter, and the failure-rate cool-down off (threshold 1.0
// can never be exceeded).
void UseFastTimings(WrapperConfiguration* config);
// A wrapper configuration for `table` on `emu` with OAuth and UseFastTimings, cool-downs of
// 200 ms.
WrapperConfiguration FastConfig(const emulator::Emulator& emu, const std::string& table);

// id int64 (not null), name utf8 (nullable); ids first_id .. first_id + n - 1.
std::shared_ptr<arrow::Schema> RowSchema();
std::shared_ptr<arrow::RecordBatch> MakeRows(int64_t first_id, int64_t n,
                                             int64_t name_bytes = 8);
// Like MakeRows, but the ids at `null_rows` are null although the field is not nullable: the
// encoder fails exactly those rows.
std::shared_ptr<arrow::RecordBatch> MakeRowsWithNullIds(int64_t first_id, int64_t n,
                                                        const std::vector<int64_t>& null_rows);

// Every `id` of the Delta table, duplicates kept (after committing what is pending).
arrow::Result<std::vector<int64_t>> ReadDeltaIds(emulator::Emulator& emu, const std::string& table);
// The whole Delta table (live files of the log, in log order) as one table.
arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(emulator::Emulator& emu,
                                                            const std::string& table);
// Rows the table holds (durable), duplicates included.
int64_t TableRows(emulator::Emulator& emu, const std::string& table);

// Emulator per-stream stats of `table` (from /admin/stats "streams").
struct EmulatorStream {
  std::string stream_id;
  int64_t requests = 0;
  int64_t rows = 0;
  bool open = false;
};
std::vector<EmulatorStream> EmulatorStreams(emulator::Emulator& emu, const std::string& table);

// Asserts the accounting invariants and that the row lists match the expected outcome.
void ExpectAccounted(const TransmissionResult& r, int64_t total_rows);

}  // namespace arrow_zerobus::testing
