#include "send_command.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include <arrow/record_batch.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "checkpoint.h"
#include "inputs.h"
#include "progress.h"
#include "quarantine.h"
#include "arrow_zerobus/schema.h"
#include "decode/table_schema.h"
#include "server/emulator.h"

namespace arrow_zerobus::cli {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Ctrl-C (or SIGTERM) stops reading; what is in flight is drained, then the checkpoint and the
// summary are written. A second one ends the process at once.
std::atomic<bool> g_interrupted{false};

extern "C" void OnStopSignal(int) {
  if (g_interrupted.exchange(true)) std::_Exit(kExitInterrupted);
}

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string out;
  const char* digits = "0123456789abcdef";
  for (int i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xFF;
    out += digits[v >> 4];
    out += digits[v & 15];
  }
  return out;
}

// "main.default.<file stem>" with the stem made a valid identifier.
std::string DefaultLocalTable(const std::string& path) {
  std::string stem = path == "-" ? "stdin" : fs::path(path).stem().string();
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  if (stem.empty()) stem = "rows";
  return "main.default." + stem;
}

struct FileReport {
  InputFile file;
  std::optional<int64_t> known_rows;
  int64_t skipped_by_checkpoint = 0;
  int64_t rows = 0, landed = 0, failed = 0, in_doubt = 0, bytes = 0, retried_batches = 0;
  int64_t retried = 0, possibly_duplicated = 0;
  // Rows of this file with a final outcome, counted from the file's start (checkpoint).
  int64_t done_prefix = 0;
  // First row of the earliest batch whose failed rows are not safely quarantined yet.
  std::optional<int64_t> hold;
  // First row of the earliest batch whose failed rows are in no quarantine at all (none given,
  // or writing them failed): closing the quarantine does not release this one.
  std::optional<int64_t> hold_not_quarantined;
  bool read_to_end = false;
  std::optional<Clock::time_point> first_send, last_done;
};

struct InFlight {
  size_t file_index;
  int64_t first_row;  // file row of the batch's row 0
  std::shared_ptr<arrow::RecordBatch> batch;
  arrow::Future<TransmissionResult> future;
};

class Sender {
 public:
  explicit Sender(const SendCommandOptions& o) : o_(o) {}

  int Run() {
    int code = Prepare();
    if (code >= 0) return code;
    InstallStopHandlers();
    progress_.emplace(Progress::ModeFromName(o_.progress, o_.quiet), counters_);
    progress_->Start();
    start_ = Clock::now();
    SendAll();
    return Finish();
  }

 private:
  // ---- set-up: everything that can be refused is refused before a row is sent -----------------

  int Usage(const std::string& message) {
    std::cerr << "zerobus-arrow send: " << message << "\n";
    return kExitUsage;
  }
  int Error(const arrow::Status& st) {
    std::cerr << "zerobus-arrow send: " << Render(st) << "\n";
    return kExitError;
  }
  static std::string Render(const arrow::Status& st) {
    // Input errors carry their own label; library errors their kind's prefix.
    return GetZerobusDetail(st) ? RenderError(st) : st.message();
  }

  int Prepare() {
    auto config = LoadConfiguration();
    if (!config.ok()) return Error(config.status());
    config_ = std::move(*config);

    auto files = ResolveInputs(o_.inputs);
    if (!files.ok()) return Error(files.status());
    if (!o_.checkpoint.empty() && files->size() == 1 && files->front().path == "-") {
      return Usage("--checkpoint cannot resume stdin: give files");
    }
    input_options_.batch_rows = o_.batch_rows;
    input_options_.drop_quarantine_columns = o_.drop_quarantine_columns;
    if (!o_.schema_from.empty()) {
      auto schema = ReadSchemaOf(o_.schema_from);
      if (!schema.ok()) return Error(schema.status());
      input_options_.schema = *schema;
    }
    if (!o_.checkpoint.empty()) {
      auto loaded = Checkpoint::Load(o_.checkpoint);
      if (!loaded.ok()) return Usage(loaded.status().message());
      checkpoint_ = std::move(*loaded);
    }
    // Every input is opened once before sending: a file with other columns, or one that cannot
    // be read at all, stops the send before any row goes out.
    std::shared_ptr<arrow::Schema> reference;
    int64_t total = 0;
    bool total_known = true;
    for (const auto& f : *files) {
      FileReport r;
      r.file = f;
      if (checkpoint_) {
        if (const FileProgress* p = checkpoint_->Find(f.path)) {
          if (p->size_bytes >= 0 && f.size_bytes >= 0 && p->size_bytes != f.size_bytes) {
            return Error(InputError(f.path, "changed since the checkpoint was written (size " +
                                                std::to_string(p->size_bytes) + " then, " +
                                                std::to_string(f.size_bytes) + " now)"));
          }
          r.skipped_by_checkpoint = p->rows_done;
          r.done_prefix = p->rows_done;
          r.read_to_end = p->complete;
          if (!p->complete) resumed_partial_ = true;
        }
      }
      if (f.path != "-") {
        auto reader = OpenInput(f, input_options_);
        if (!reader.ok()) return Error(reader.status());
        auto schema = (*reader)->schema();
        if (!reference) {
          reference = schema;
          input_schema_ = schema;
        } else {
          auto st = CheckSameSchema(*reference, files->front().path, *schema, f.path);
          if (!st.ok()) return Error(st);
        }
        r.known_rows = (*reader)->known_rows();
      }
      if (r.known_rows) {
        total += *r.known_rows - r.skipped_by_checkpoint;
      } else {
        total_known = false;
      }
      files_.push_back(std::move(r));
    }
    counters_.total_rows = total_known ? total : -1;

    if (!o_.failed_rows.empty()) {
      auto q = Quarantine::Open(o_.failed_rows, o_.overwrite_failed_rows);
      if (!q.ok()) return Usage(q.status().message());
      quarantine_ = std::move(*q);
    }
    if (config_.table_name.empty()) {
      if (!local_) return Usage("--table is required (or ZEROBUS_TABLE_NAME, or the config file)");
      config_.table_name = DefaultLocalTable(files_.front().file.path);
    }
    if (local_) {
      auto st = StartLocalServer();
      if (!st.ok()) return Error(st);
    }
    auto wrapper = ZerobusWrapper::Make(config_);
    if (!wrapper.ok()) return Error(wrapper.status());
    wrapper_ = std::move(*wrapper);
    return -1;
  }

  // Settings come from a YAML file or the environment (ZEROBUS_*, docs/configuration.md); flags
  // override them. The client secret is never a flag: it stays out of shell history and `ps`.
  arrow::Result<WrapperConfiguration> LoadConfiguration() {
    ARROW_ASSIGN_OR_RAISE(auto config, o_.config_file.empty()
                                           ? WrapperConfiguration::FromEnvironment()
                                           : WrapperConfiguration::FromYamlFile(o_.config_file));
    // The secret belongs in the environment, also next to a configuration file without one.
    if (!config.client_secret) {
      const char* secret = std::getenv("ZEROBUS_CLIENT_SECRET");
      if (secret && *secret) config.client_secret = SecretString(secret);
    }
    if (!o_.endpoint.empty()) config.endpoint = o_.endpoint;
    if (!o_.table.empty()) config.table_name = o_.table;
    if (!o_.unity_catalog_url.empty()) config.unity_catalog_url = o_.unity_catalog_url;
    if (!o_.client_id.empty()) config.client_id = o_.client_id;
    if (o_.streams > 0) config.streams_per_table = o_.streams;
    if (!o_.transport.empty()) {
      ARROW_ASSIGN_OR_RAISE(config.transport, ParseTransport(o_.transport, "--transport"));
    }
    if (!o_.ipc_compression.empty()) {
      ARROW_ASSIGN_OR_RAISE(config.ipc_compression,
                            ParseIpcCompression(o_.ipc_compression, "--ipc-compression"));
    }
    if (!config.application_name) config.application_name = "zerobus-arrow-cli";
    local_ = config.endpoint.empty();
    return config;
  }

  // No endpoint anywhere: an emulator in this process, writing Delta tables into local_dir.
  arrow::Status StartLocalServer() {
    emulator::EmulatorOptions eo = emulator::EmulatorOptions::Defaults();
    eo.data_dir = o_.local_dir;
    const std::string id = "zerobus-arrow-local";
    const std::string secret = RandomHex(16);
    eo.principals[id] = secret;
    // A new table is declared from the inputs' Arrow schema, as `describe --declaration-out`
    // does, so that it gets their Delta types (timestamp, date, decimal, smallint...); created
    // from the protobuf descriptor it would get the wire types (bigint for a timestamp). An
    // existing table is used as it is.
    std::error_code ec;
    if (input_schema_ && !fs::exists(fs::path(TableDir()) / "_delta_log", ec)) {
      auto columns = DeltaColumnsFromArrowSchema(*input_schema_);
      if (columns.ok()) {
        auto schema = emulator::SchemaFromDeclaration(TableDeclarationJson(*columns));
        if (schema.ok()) eo.tables.push_back({config_.table_name, *schema});
      }
    }
    local_server_ = std::make_unique<emulator::Emulator>(eo);
    ARROW_RETURN_NOT_OK(local_server_->Start());
    config_.endpoint = local_server_->grpc_endpoint();
    config_.unity_catalog_url = local_server_->http_endpoint();
    config_.client_id = id;
    config_.client_secret = SecretString(secret);
    if (!o_.quiet) {
      std::cerr << "zerobus-arrow send: no endpoint given: sending to a local emulator writing into "
                << fs::absolute(o_.local_dir).string() << " (table " << config_.table_name
                << "; read it with `zerobus-arrow show " << TableDir() << "`)\n";
    }
    return arrow::Status::OK();
  }

  std::string TableDir() const {
    std::string dir = o_.local_dir;
    std::string name = config_.table_name;
    for (char& c : name) {
      c = c == '.' ? '/' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return (fs::path(dir) / name).string();
  }

  // ---- sending ----------------------------------------------------------------------------------

  void SendAll() {
    for (size_t i = 0; i < files_.size() && !stop_reading(); ++i) {
      FileReport& r = files_[i];
      if (r.read_to_end) continue;  // finished in an earlier run
      auto reader = OpenInput(r.file, input_options_, r.skipped_by_checkpoint);
      if (!reader.ok()) {
        error_ = reader.status();
        break;
      }
      int64_t row = r.skipped_by_checkpoint;
      while (!stop_reading()) {
        auto batch = (*reader)->Next();
        if (!batch.ok()) {
          error_ = batch.status();
          break;
        }
        if (!*batch) {
          r.read_to_end = true;
          break;
        }
        const int64_t n = (*batch)->num_rows();
        if (n == 0) continue;
        auto future = wrapper_->SendBatchAsync(**batch);
        if (!future.ok()) {
          error_ = future.status();
          break;
        }
        if (!r.first_send) r.first_send = Clock::now();
        counters_.rows_read += n;
        window_.push_back({i, row, *batch, std::move(*future)});
        row += n;
        // Keep at most max_pending_batches in flight; collect whatever has finished meanwhile.
        // The wait is in slices so that a Ctrl-C is noticed while the window is full (the
        // drain below then bounds the wait).
        while (!window_.empty() &&
               (window_.size() >= static_cast<size_t>(std::max(1, o_.max_pending_batches)) ||
                window_.front().future.is_finished())) {
          if (!WaitFront(0.1)) break;
          Collect();
        }
      }
    }
    // Drain: everything in flight gets its outcome; after Ctrl-C, for at most drain_timeout_s
    // from the moment it is noticed.
    std::optional<Clock::time_point> deadline;
    while (!window_.empty()) {
      if (g_interrupted.load()) {
        if (!deadline) {
          deadline = Clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(o_.drain_timeout_s * 1000));
        }
        const double left = std::chrono::duration<double>(*deadline - Clock::now()).count();
        if (left <= 0 || !window_.front().future.Wait(left)) break;
      } else if (!window_.front().future.Wait(0.1)) {
        continue;  // look at g_interrupted again
      }
      Collect();
    }
    for (const auto& f : window_) unresolved_rows_ += f.batch->num_rows();
  }

  bool stop_reading() const { return g_interrupted.load() || !error_.ok(); }

  // Waits for the oldest batch in flight, in slices of `slice_s`; false when Ctrl-C came first.
  bool WaitFront(double slice_s) {
    while (!window_.front().future.Wait(slice_s)) {
      if (g_interrupted.load()) return false;
    }
    return true;
  }

  // The oldest batch in flight has its outcome: count it, quarantine its failed rows, advance
  // its file's checkpoint.
  void Collect() {
    InFlight f = std::move(window_.front());
    window_.pop_front();
    FileReport& r = files_[f.file_index];
    const TransmissionResult& result = f.future.result().ValueOrDie();  // sends never fail
    r.rows += result.total_rows;
    r.landed += result.successful_count;
    r.failed += result.failed_count;
    r.in_doubt += static_cast<int64_t>(result.in_doubt_rows.size());
    r.bytes += result.batch_size_bytes;
    if (result.attempts > 1) ++r.retried_batches;
    r.retried += result.retried_rows;
    r.possibly_duplicated += result.replayed_rows;
    r.last_done = Clock::now();
    counters_.rows_landed += result.successful_count;
    counters_.rows_failed += result.failed_count;
    counters_.bytes_sent += result.batch_size_bytes;
    for (const auto& failed : result.failed_rows) {
      if (shown_errors_++ >= o_.max_errors) break;
      progress_->Message(r.file.path + " row " + std::to_string(f.first_row + failed.row_index) +
                         ": " + failed.message);
    }
    if (!result.failed_rows.empty()) {
      bool written = false;
      if (quarantine_) {
        arrow::Status st = quarantine_->Write(*f.batch, result, r.file.path, f.first_row);
        if (!st.ok() && error_.ok()) error_ = st;
        written = st.ok();
      }
      if (!written && !r.hold_not_quarantined) r.hold_not_quarantined = f.first_row;
      const bool safe = written && quarantine_->durable_on_write();
      if (!safe && !r.hold) r.hold = f.first_row;
    }
    r.done_prefix = f.first_row + f.batch->num_rows();
    MaybeSaveCheckpoint(false);
    // A batch that failed as a whole for a reason other than its data (no connection, refused
    // credentials, a table that refuses the stream) would fail the same way for every batch
    // after it: stop reading instead of copying the whole input into the quarantine.
    if (result.total_rows > 0 && result.successful_count == 0 && result.error &&
        ErrorKindOfMessage(*result.error) != ErrorKind::kConversion && error_.ok()) {
      error_ = MakeError(ErrorKind::kTransmission, false,
                         "the send stopped after every row of a batch of " + r.file.path +
                             " failed (later batches would fail the same way): " + *result.error);
    }
  }

  FileProgress ProgressOf(const FileReport& r) const {
    FileProgress p;
    p.rows_done = r.hold ? std::min(r.done_prefix, *r.hold) : r.done_prefix;
    bool in_flight = false;
    for (const auto& f : window_) in_flight = in_flight || &files_[f.file_index] == &r;
    p.complete = r.read_to_end && !r.hold && !in_flight;
    p.size_bytes = r.file.size_bytes;
    return p;
  }

  void MaybeSaveCheckpoint(bool force) {
    if (!checkpoint_) return;
    const auto now = Clock::now();
    if (!force && now - last_checkpoint_ < std::chrono::seconds(1)) return;
    last_checkpoint_ = now;
    for (const auto& r : files_) {
      if (r.file.path == "-") continue;
      checkpoint_->Set(r.file.path, ProgressOf(r));
    }
    arrow::Status st = checkpoint_->Save();
    if (!st.ok() && error_.ok()) error_ = st;
  }

  // ---- the end --------------------------------------------------------------------------------

  int Finish() {
    const bool interrupted = g_interrupted.load();
    if (quarantine_) {
      arrow::Status st = quarantine_->Close();
      if (!st.ok() && error_.ok()) error_ = st;
      // Closed: the rows written to it are safe now, so the checkpoint may pass them (not the
      // failed rows whose write failed).
      if (st.ok()) {
        for (auto& r : files_) r.hold = r.hold_not_quarantined;
      }
    }
    MaybeSaveCheckpoint(true);
    arrow::Status closed;
    if (unresolved_rows_ == 0) closed = wrapper_->Shutdown();
    const WrapperStats stats = wrapper_->stats();
    progress_->Stop();
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();

    int64_t rows = 0, landed = 0, failed = 0, in_doubt = 0, bytes = 0;
    for (const auto& r : files_) {
      rows += r.rows;
      landed += r.landed;
      failed += r.failed;
      in_doubt += r.in_doubt;
      bytes += r.bytes;
    }
    int code = kExitAllLanded;
    if (failed > 0) code = kExitSomeFailed;
    if (!closed.ok() && error_.ok()) error_ = closed;
    if (!error_.ok()) code = kExitError;
    if (interrupted) code = kExitInterrupted;

    if (!o_.quiet) {
      std::printf("sent %lld rows to %s: %lld landed (acknowledged), %lld failed", 
                  static_cast<long long>(rows), config_.table_name.c_str(),
                  static_cast<long long>(landed), static_cast<long long>(failed));
      if (in_doubt > 0) {
        std::printf(" (%lld of them in doubt: sent but not acknowledged, they may be in the table)",
                    static_cast<long long>(in_doubt));
      }
      std::printf("\n%lld rows retried, %lld possibly duplicated by replay; %.2f s, %.2f M rows/s\n",
                  static_cast<long long>(stats.rows_retried),
                  static_cast<long long>(stats.replayed_records), secs,
                  secs > 0 ? static_cast<double>(rows) / secs / 1e6 : 0.0);
      if (quarantine_) {
        if (quarantine_->rows() > 0) {
          std::printf("failed rows written to %s (%lld rows; send it again after a fix with "
                      "--drop-quarantine-columns)\n",
                      quarantine_->path().c_str(), static_cast<long long>(quarantine_->rows()));
        } else {
          std::printf("no failed rows: %s not written\n", quarantine_->path().c_str());
        }
      }
      if (unresolved_rows_ > 0) {
        std::printf("%lld rows were still in flight when the drain timeout ran out: their outcome "
                    "is unknown (they may be in the table); the checkpoint is before them\n",
                    static_cast<long long>(unresolved_rows_));
      }
      if (checkpoint_) {
        for (const auto& r : files_) {
          const FileProgress p = ProgressOf(r);
          if (!p.complete && p.rows_done < r.done_prefix) {
            std::printf("checkpoint: %s holds at row %lld: failed rows after it are not in a "
                        "quarantine file (give --failed-rows to move past them)\n",
                        r.file.path.c_str(), static_cast<long long>(p.rows_done));
          }
        }
        if (resumed_partial_) {
          std::printf("resumed from %s: rows after its position that had landed before the "
                      "earlier run stopped may be in the table twice (at-least-once)\n",
                      checkpoint_->path().c_str());
        }
      }
      if (interrupted) std::printf("interrupted: stopped reading; the checkpoint is written\n");
    }
    if (!error_.ok()) std::cerr << "zerobus-arrow send: " << Render(error_) << "\n";
    if (!o_.report_json.empty()) WriteReport(code, stats, secs, rows, landed, failed, in_doubt, bytes);
    if (local_server_) (void)local_server_->Shutdown();
    return code;
  }

  void WriteReport(int code, const WrapperStats& stats, double secs, int64_t rows, int64_t landed,
                   int64_t failed, int64_t in_doubt, int64_t bytes) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& r : files_) {
      const double fsecs =
          r.first_send && r.last_done
              ? std::chrono::duration<double>(*r.last_done - *r.first_send).count()
              : 0.0;
      files.push_back({{"path", r.file.path},
                       {"format", InputFormatName(r.file.format)},
                       {"rows", r.rows},
                       {"landed", r.landed},
                       {"failed", r.failed},
                       {"in_doubt", r.in_doubt},
                       {"retried_batches", r.retried_batches},
                       {"retried", r.retried},
                       {"possibly_duplicated", r.possibly_duplicated},
                       {"bytes", r.bytes},
                       {"seconds", fsecs},
                       {"skipped_by_checkpoint", r.skipped_by_checkpoint},
                       {"checkpoint_rows_done", ProgressOf(r).rows_done}});
    }
    nlohmann::json report = {
        {"table", config_.table_name},
        {"endpoint", config_.endpoint},
        {"local", local_},
        {"exit_code", code},
        {"interrupted", g_interrupted.load()},
        {"error", error_.ok() ? nlohmann::json(nullptr) : nlohmann::json(Render(error_))},
        {"total",
         {{"rows", rows},
          {"landed", landed},
          {"failed", failed},
          {"in_doubt", in_doubt},
          {"unresolved", unresolved_rows_},
          {"retried", stats.rows_retried},
          {"possibly_duplicated", stats.replayed_records},
          {"bytes", bytes},
          {"seconds", secs},
          {"rows_per_s", secs > 0 ? static_cast<double>(rows) / secs : 0.0}}},
        {"files", files},
        {"failed_rows_file",
         quarantine_ && quarantine_->rows() > 0 ? nlohmann::json(quarantine_->path()) : nullptr},
        {"quarantined_rows", quarantine_ ? quarantine_->rows() : 0},
        {"checkpoint", checkpoint_ ? nlohmann::json(checkpoint_->path()) : nullptr},
    };
    std::ofstream out(o_.report_json);
    out << report.dump(2) << "\n";
    if (!out) std::cerr << "zerobus-arrow send: cannot write --report-json " << o_.report_json << "\n";
  }

  const SendCommandOptions& o_;
  WrapperConfiguration config_;
  bool local_ = false;
  std::unique_ptr<emulator::Emulator> local_server_;
  std::optional<ZerobusWrapper> wrapper_;
  InputOptions input_options_;
  std::shared_ptr<arrow::Schema> input_schema_;  // of the first input (none for stdin)
  std::optional<Checkpoint> checkpoint_;
  bool resumed_partial_ = false;
  std::unique_ptr<Quarantine> quarantine_;
  std::vector<FileReport> files_;
  std::deque<InFlight> window_;
  ProgressCounters counters_;
  std::optional<Progress> progress_;
  Clock::time_point start_;
  Clock::time_point last_checkpoint_{};
  arrow::Status error_;
  int64_t unresolved_rows_ = 0;
  int shown_errors_ = 0;
};

}  // namespace

int RunSend(const SendCommandOptions& options) { return Sender(options).Run(); }

}  // namespace arrow_zerobus::cli
