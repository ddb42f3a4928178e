// The gRPC side: Zerobus.EphemeralStream and Arrow Flight DoPut implemented with the callback
// API (one ServerBidiReactor per RPC, see ingest_reactor_internal.h; docs/emulator.md says why
// callback rather than async), plus the per-stream statistics the admin API shows.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/proto_wire.h"
#include "server/auth.h"
#include "server/faults.h"
#include "server/scheduler_internal.h"
#include "store/table_store.h"
#include <grpcpp/generic/async_generic_service.h>

#include "zerobus.grpc.pb.h"

namespace arrow_zerobus::emulator {

// Counters of one stream; written by its reactor, read by the admin API. Thread-safe.
struct StreamStats {
  std::string stream_id;
  std::string table;
  std::string record_type;
  std::chrono::system_clock::time_point opened_at;
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> rows{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> acks{0};             // ack messages sent
  std::atomic<int64_t> last_ack_offset{-1};
  std::atomic<int64_t> close_signals{0};
  std::atomic<bool> open{true};
  mutable std::mutex mu;
  int final_code = 0;  // guarded by mu, valid once !open
  std::string final_message;
};

// Thread-safe.
class StatsRegistry {
 public:
  void Add(std::shared_ptr<StreamStats> stream);
  // {"tables": [...], "streams": [...]} (the caller adds server-wide fields).
  nlohmann::json ToJson(const TableStore& store) const;
  int64_t open_streams() const { return open_.load(); }
  void StreamOpened() { open_.fetch_add(1); }
  void StreamClosed() { open_.fetch_sub(1); }

 private:
  mutable std::mutex mu_;
  std::list<std::shared_ptr<StreamStats>> streams_;  // newest last; closed ones trimmed
  std::atomic<int64_t> open_{0};
};

// An ingest request read straight from its wire bytes.
struct WireIngest {
  int64_t offset = 0;
  bool json = false;   // json_record / json_batch
  bool batch = false;  // ingest_record_batch
};

// Parses the common encoding of an EphemeralStreamRequest holding one ingest_record or
// ingest_record_batch with its offset_id and records; appends each record's bytes to `records`
// as views into `message`. Returns false for anything else (create_stream, a missing offset or
// record, repeated payloads, malformed bytes): the caller then parses with the generated
// classes, which give the exact protobuf semantics and the error messages.
bool ParseIngestWire(std::string_view message, WireIngest* out,
                     std::vector<std::string_view>* records);

struct ServiceContext {
  std::shared_ptr<TableStore> store;
  TokenStore* tokens = nullptr;
  FaultRegistry* faults = nullptr;
  Scheduler* scheduler = nullptr;
  StatsRegistry* stats = nullptr;
  bool no_auth = false;
  int64_t max_message_bytes = 10 * 1024 * 1024;
  int64_t max_pending_bytes_per_stream = 64 * 1024 * 1024;
  // One line per stream opened / ended (or refused); nullptr = silent. Called from gRPC threads.
  std::function<void(const std::string&)> log;
};

inline constexpr const char* kEphemeralStreamMethod = "/databricks.zerobus.Zerobus/EphemeralStream";
inline constexpr const char* kTableHeader = "x-databricks-zerobus-table-name";

// A random (version 4) UUID: stream ids.
std::string NewUuid();
// Value of a client metadata header ("" if absent).
std::string MetadataValue(const grpc::GenericCallbackServerContext* ctx, const char* key);
// The gRPC status for a failed emulator Status (ToStatusCode), message prefixed.
grpc::Status StatusFromArrow(const arrow::Status& st, const std::string& prefix = "");

// A running RPC the service can reach while it lives (EphemeralStream or Flight DoPut).
class LiveStream {
 public:
  virtual ~LiveStream() = default;
  // Re-evaluates acks (faults changed).
  virtual void Kick() = 0;
};

// Serves EphemeralStream as a generic (byte buffer) callback service: requests are parsed from
// the received bytes by ParseIngestWire, so records are views into gRPC's buffer instead of one
// std::string each (see docs/emulator.md); and Flight DoPut (flight_service.cc). Other methods
// answer UNIMPLEMENTED.
// Thread-safe. Must outlive the grpc::Server it is registered with.
class ZerobusService final : public grpc::CallbackGenericService {
 public:
  explicit ZerobusService(ServiceContext context) : context_(std::move(context)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;

  // Re-evaluates every open stream's acks (after faults changed, e.g. withheld acks released).
  void KickAll();

  // Reactors register themselves while their RPC runs.
  void Register(const std::shared_ptr<LiveStream>& stream);
  void Unregister(const LiveStream* stream);

 private:
  ServiceContext context_;
  std::mutex mu_;
  std::list<std::weak_ptr<LiveStream>> live_;
};

// Arrow Flight DoPut (flight_service.cc): the vendor SDKs' Arrow stream, on the same port.
inline constexpr const char* kFlightDoPutMethod = "/arrow.flight.protocol.FlightService/DoPut";
// Flight messages up to this size are accepted even when max_message_bytes is lower: the
// vendor encoder's 2 MiB split target is approximate (skewed rows make larger pieces).
inline constexpr int64_t kFlightMinMessageBytes = 16 * 1024 * 1024;
class IngestReactor;
// The reactor of one DoPut call (not begun yet).
std::shared_ptr<IngestReactor> MakeFlightPutReactor(ZerobusService* service,
                                                    const ServiceContext* svc,
                                                    grpc::GenericCallbackServerContext* ctx);

}  // namespace arrow_zerobus::emulator
