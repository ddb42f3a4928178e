// Helpers for the stream client's tests: an in-process emulator on loopback, Arrow rows encoded
// by the project's encoder, fast client options, Delta read-back, a scripted HTTP server and a
// silent TCP listener (for timeouts).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arrow/api.h>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/stream.h"
#include "server/emulator.h"

namespace arrow_zerobus::testing {

inline constexpr const char* kClientId = "client-a";
inline constexpr const char* kClientSecret = "secret-a-7f3c9e";

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Delta sink in `dir` (fast commits, no fsync) or the null sink; principal kClientId.
emulator::EmulatorOptions EmulatorTestOptions(const std::string& dir,
                                              emulator::SinkKind sink = emulator::SinkKind::kDelta);
std::unique_ptr<emulator::Emulator> StartEmulator(emulator::EmulatorOptions options);

// id int64 not null, name utf8 nullable.
std::shared_ptr<arrow::Schema> RowSchema();
std::shared_ptr<arrow::RecordBatch> MakeRows(int64_t first_id, int64_t n);
// Encodes with the project's encoder; `max_request_bytes` controls the chunking.
EncodedBatch EncodeRows(const arrow::RecordBatch& batch,
                        int64_t max_request_bytes = kDefaultMaxRequestBytes);
DescriptorProto RowDescriptorFor();

// OAuth against the emulator's token endpoint.
std::shared_ptr<HeadersProvider> OAuthProvider(const emulator::Emulator& emu,
                                               const std::string& table,
                                               std::shared_ptr<OAuthTokenSource>* source = nullptr,
                                               const std::string& secret = kClientSecret);

// Options with small timeouts and backoffs so failure paths finish quickly.
StreamOptions FastOptions(const emulator::Emulator& emu, const std::string& table);

// The live files of the Delta table `name`, in log order, as one table (null: no files yet).
arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(emulator::Emulator& emu,
                                                            const std::string& name);
// Every `id` of the Delta table `name`, in file order (duplicates kept).
arrow::Result<std::vector<int64_t>> ReadDeltaIds(emulator::Emulator& emu, const std::string& name);

// Sum of the emulator's per-stream "requests" for `table`, and the number of streams.
struct EmulatorStreamTotals {
  int64_t streams = 0;
  int64_t requests = 0;
  int64_t rows = 0;
};
EmulatorStreamTotals StreamTotals(emulator::Emulator& emu, const std::string& table);

// Waits for every future; returns how many succeeded, failures go to `errors`.
int64_t WaitAll(std::vector<arrow::Future<IngestAck>>& futures,
                std::vector<arrow::Status>* errors = nullptr,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A loopback HTTP/1.1 server answering each request with the next scripted reply (the last one
// repeats). Records the raw requests.
class ScriptedHttpServer {
 public:
  struct Reply {
    int status;
    std::string body;
  };
  explicit ScriptedHttpServer(std::vector<Reply> replies);
  ~ScriptedHttpServer();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const;

 private:
  void Serve();
  std::vector<Reply> replies_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

// Accepts TCP connections and never answers (a peer that hangs).
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  int port() const { return port_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> conns_;
};

// An HTTP CONNECT proxy on loopback that relays bytes and records the CONNECT targets.
class ConnectProxy {
 public:
  ConnectProxy();
  ~ConnectProxy();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() const;

 private:
  void Relay(int client);
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::string> targets_;
  std::vector<std::thread> relays_;
};

// A Zerobus server on loopback that follows a script instead of the protocol's rules, to test
// how the client copes with a misbehaving server. It records metadata and offsets.
class ScriptedZerobusServer {
 public:
  enum class Mode {
    kNormal,             // create answered, every request acked
    kNeverAnswerCreate,  // reads create_stream, never answers
    kAckBackwards,       // acks 1 after the second request, then 0
    kAckBeyondSent,      // acks offset 5 after the first request
    kAckWithoutField,    // an ingest_record_response without its offset
    kGarbage,            // bytes that are not an EphemeralStreamResponse
  };
  explicit ScriptedZerobusServer(Mode mode);
  ~ScriptedZerobusServer();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Metadata of the most recent stream ("key" -> value).
  std::map<std::string, std::string> metadata() const;
  std::vector<int64_t> offsets() const;
  int streams() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  int port_ = 0;
};

std::string Base64(const std::string& in);

// A loopback port nothing listens on.
int ClosedPort();

// Self-signed certificate for localhost/127.0.0.1 made with the openssl CLI; false on failure.
bool MakeSelfSignedCert(const std::string& dir, const std::string& name, std::string* cert,
                        std::string* key);

}  // namespace arrow_zerobus::testing
