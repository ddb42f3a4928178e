#include "arrow_zerobus/result.h"

#include <algorithm>
#include <sstream>

#include <arrow/array.h>
#include <arrow/array/concatenate.h>
#include <arrow/record_batch.h>

namespace arrow_zerobus {

namespace {

constexpr ErrorKind kAllKinds[] = {
    ErrorKind::kConfiguration, ErrorKind::kAuthentication, ErrorKind::kConnection,
    ErrorKind::kConversion,    ErrorKind::kTransmission,   ErrorKind::kRetryExhausted,
    ErrorKind::kTokenRefresh,
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

ErrorKind ErrorKindOfMessage(std::string_view message) {
  for (ErrorKind kind : kAllKinds) {
    const std::string_view name = ErrorKindName(kind);
    if (StartsWith(message, name) && message.size() > name.size() && message[name.size()] == ':') {
      return kind;
    }
    if (StartsWith(message, ErrorKindPrefix(kind))) return kind;
  }
  return ErrorKind::kConversion;
}

arrow::Result<TransmissionResult> TransmissionResult::FromRowOutcomes(
    int64_t total_rows, std::vector<int64_t> successful_rows, std::vector<FailedRow> failed_rows) {
  std::sort(successful_rows.begin(), successful_rows.end());
  std::stable_sort(failed_rows.begin(), failed_rows.end(),
                   [](const FailedRow& a, const FailedRow& b) { return a.row_index < b.row_index; });
  TransmissionResult r;
  r.total_rows = total_rows;
  r.successful_count = static_cast<int64_t>(successful_rows.size());
  r.failed_count = static_cast<int64_t>(failed_rows.size());
  r.successful_rows = std::move(successful_rows);
  r.failed_rows = std::move(failed_rows);
  r.success = r.successful_count > 0 || total_rows == 0;
  if (!r.failed_rows.empty()) {
    // The first failed row's message is the result's summary error; callers may replace it.
    r.error = r.failed_rows.front().message;
  }
  ARROW_RETURN_NOT_OK(r.CheckInvariants());
  return r;
}

TransmissionResult TransmissionResult::WholeBatchFailure(int64_t total_rows,
                                                         const arrow::Status& error,
                                                         int32_t attempts) {
  TransmissionResult r;
  const std::string message = RenderError(error);
  r.success = total_rows == 0;
  r.error = message;
  r.attempts = attempts;
  r.total_rows = total_rows;
  r.failed_count = total_rows;
  r.failed_rows.reserve(static_cast<size_t>(total_rows));
  for (int64_t i = 0; i < total_rows; ++i) r.failed_rows.push_back({i, message});
  return r;
}

TransmissionResult TransmissionResult::Concatenate(const std::vector<TransmissionResult>& parts) {
  TransmissionResult r;
  r.attempts = 1;
  size_t failed = 0, successful = 0, in_doubt = 0;
  for (const auto& p : parts) {
    failed += p.failed_rows.size();
    successful += p.successful_rows.size();
    in_doubt += p.in_doubt_rows.size();
  }
  r.failed_rows.reserve(failed);
  r.successful_rows.reserve(successful);
  r.in_doubt_rows.reserve(in_doubt);
  for (const auto& p : parts) {
    const int64_t base = r.total_rows;
    for (const auto& f : p.failed_rows) r.failed_rows.push_back({base + f.row_index, f.message});
    for (int64_t i : p.successful_rows) r.successful_rows.push_back(base + i);
    for (int64_t i : p.in_doubt_rows) r.in_doubt_rows.push_back(base + i);
    r.total_rows += p.total_rows;
    r.successful_count += p.successful_count;
    r.failed_count += p.failed_count;
    r.batch_size_bytes += p.batch_size_bytes;
    r.retried_rows += p.retried_rows;
    r.replayed_rows += p.replayed_rows;
    r.wire_copies += p.wire_copies;
    r.rows_sent_more_than_once += p.rows_sent_more_than_once;
    r.attempts = std::max(r.attempts, p.attempts);
    if (p.latency_ms) r.latency_ms = std::max(r.latency_ms.value_or(0.0), *p.latency_ms);
    if (!r.error && p.error) r.error = p.error;
  }
  r.success = r.successful_count > 0 || r.total_rows == 0;
  return r;
}

std::vector<int64_t> TransmissionResult::FailedRowIndices() const {
  std::vector<int64_t> out;
  out.reserve(failed_rows.size());
  for (const auto& f : failed_rows) out.push_back(f.row_index);
  return out;
}

std::vector<int64_t> TransmissionResult::FailedRowIndicesByErrorType(
    std::string_view error_type) const {
  std::vector<int64_t> out;
  const std::optional<ErrorKind> wanted = ErrorKindFromName(error_type);
  if (!wanted) return out;  // an unknown type name has no rows
  for (const auto& f : failed_rows) {
    if (ErrorKindOfMessage(f.message) == *wanted) out.push_back(f.row_index);
  }
  return out;
}

std::map<std::string, std::vector<int64_t>> TransmissionResult::GroupErrorsByType() const {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& f : failed_rows) {
    out[std::string(ErrorKindName(ErrorKindOfMessage(f.message)))].push_back(f.row_index);
  }
  return out;
}

ErrorStatistics TransmissionResult::Statistics() const {
  ErrorStatistics s;
  s.total_rows = total_rows;
  s.successful_count = successful_count;
  s.failed_count = failed_count;
  if (total_rows > 0) {
    s.success_rate = static_cast<double>(successful_count) / static_cast<double>(total_rows);
    s.failure_rate = static_cast<double>(failed_count) / static_cast<double>(total_rows);
  }
  for (const auto& f : failed_rows) {
    ++s.error_type_counts[std::string(ErrorKindName(ErrorKindOfMessage(f.message)))];
  }
  return s;
}

std::vector<std::string> TransmissionResult::ErrorMessages() const {
  std::vector<std::string> out;
  out.reserve(failed_rows.size());
  for (const auto& f : failed_rows) out.push_back(f.message);
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(const arrow::RecordBatch& batch,
                                                            const std::vector<int64_t>& indices) {
  const int64_t n = batch.num_rows();
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= n) {
      return arrow::Status::Invalid("row index ", indices[i], " is outside the batch of ", n,
                                    " rows (is this the batch that was sent?)");
    }
    if (i > 0 && indices[i] <= indices[i - 1]) {
      return arrow::Status::Invalid("row indices must be ascending and unique; ", indices[i],
                                    " follows ", indices[i - 1]);
    }
  }
  // Runs of consecutive rows become slices (zero-copy); several runs are concatenated.
  std::vector<std::pair<int64_t, int64_t>> runs;  // (offset, length)
  for (int64_t idx : indices) {
    if (!runs.empty() && runs.back().first + runs.back().second == idx) {
      ++runs.back().second;
    } else {
      runs.emplace_back(idx, 1);
    }
  }
  if (runs.empty()) return batch.Slice(0, 0);
  if (runs.size() == 1) return batch.Slice(runs[0].first, runs[0].second);
  arrow::ArrayVector columns;
  columns.reserve(static_cast<size_t>(batch.num_columns()));
  for (int c = 0; c < batch.num_columns(); ++c) {
    const std::shared_ptr<arrow::Array> column = batch.column(c);
    arrow::ArrayVector pieces;
    pieces.reserve(runs.size());
    for (const auto& [offset, length] : runs) pieces.push_back(column->Slice(offset, length));
    ARROW_ASSIGN_OR_RAISE(auto joined, arrow::Concatenate(pieces));
    columns.push_back(std::move(joined));
  }
  return arrow::RecordBatch::Make(batch.schema(), static_cast<int64_t>(indices.size()),
                                  std::move(columns));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> TransmissionResult::ExtractFailedBatch(
    const arrow::RecordBatch& batch) const {
  if (failed_rows.empty()) return nullptr;
  return TakeRows(batch, FailedRowIndices());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> TransmissionResult::ExtractSuccessfulBatch(
    const arrow::RecordBatch& batch) const {
  if (successful_rows.empty()) return nullptr;
  return TakeRows(batch, successful_rows);
}

arrow::Status TransmissionResult::CheckInvariants() const {
  if (total_rows < 0) return arrow::Status::Invalid("total_rows is negative: ", total_rows);
  if (successful_count != static_cast<int64_t>(successful_rows.size())) {
    return arrow::Status::Invalid("successful_count ", successful_count, " but ",
                                  successful_rows.size(), " successful rows listed");
  }
  if (failed_count != static_cast<int64_t>(failed_rows.size())) {
    return arrow::Status::Invalid("failed_count ", failed_count, " but ", failed_rows.size(),
                                  " failed rows listed");
  }
  if (successful_count + failed_count != total_rows) {
    return arrow::Status::Invalid("successful_count + failed_count = ",
                                  successful_count + failed_count, " != total_rows ", total_rows);
  }
  for (size_t i = 0; i < successful_rows.size(); ++i) {
    const int64_t r = successful_rows[i];
    if (r < 0 || r >= total_rows) {
      return arrow::Status::Invalid("successful row ", r, " is outside [0, ", total_rows, ")");
    }
    if (i > 0 && r <= successful_rows[i - 1]) {
      return arrow::Status::Invalid("successful rows are not sorted and unique at ", r);
    }
  }
  for (size_t i = 0; i < failed_rows.size(); ++i) {
    const int64_t r = failed_rows[i].row_index;
    if (r < 0 || r >= total_rows) {
      return arrow::Status::Invalid("failed row ", r, " is outside [0, ", total_rows, ")");
    }
    if (i > 0 && r <= failed_rows[i - 1].row_index) {
      return arrow::Status::Invalid("failed rows are not sorted and unique at ", r);
    }
  }
  // Disjoint: both lists are sorted, so one merge pass finds a shared row.
  size_t a = 0, b = 0;
  while (a < successful_rows.size() && b < failed_rows.size()) {
    if (successful_rows[a] == failed_rows[b].row_index) {
      return arrow::Status::Invalid("row ", successful_rows[a],
                                    " is listed as both successful and failed");
    }
    if (successful_rows[a] < failed_rows[b].row_index) {
      ++a;
    } else {
      ++b;
    }
  }
  if (successful_count > 0 && !success) {
    return arrow::Status::Invalid("success is false although ", successful_count,
                                  " rows were delivered");
  }
  if (success && successful_count == 0 && total_rows > 0) {
    return arrow::Status::Invalid("success is true although none of ", total_rows,
                                  " rows was delivered");
  }
  if (attempts < 1) return arrow::Status::Invalid("attempts must be at least 1, got ", attempts);
  // In doubt: sorted, unique, and each one failed (both lists sorted: one merge pass).
  size_t f = 0;
  for (size_t i = 0; i < in_doubt_rows.size(); ++i) {
    const int64_t r = in_doubt_rows[i];
    if (i > 0 && r <= in_doubt_rows[i - 1]) {
      return arrow::Status::Invalid("in-doubt rows are not sorted and unique at ", r);
    }
    while (f < failed_rows.size() && failed_rows[f].row_index < r) ++f;
    if (f == failed_rows.size() || failed_rows[f].row_index != r) {
      return arrow::Status::Invalid("in-doubt row ", r, " is not a failed row");
    }
  }
  return arrow::Status::OK();
}

std::string TransmissionResult::ToString() const {
  std::ostringstream os;
  os << "TransmissionResult(success=" << (success ? "true" : "false")
     << ", total_rows=" << total_rows << ", successful_count=" << successful_count
     << ", failed_count=" << failed_count;
  if (!in_doubt_rows.empty()) os << ", in_doubt_count=" << in_doubt_rows.size();
  os << ", attempts=" << attempts;
  if (latency_ms) os << ", latency_ms=" << *latency_ms;
  os << ", batch_size_bytes=" << batch_size_bytes;
  if (error) os << ", error='" << *error << "'";
  os << ")";
  return os.str();
}

}  // namespace arrow_zerobus
