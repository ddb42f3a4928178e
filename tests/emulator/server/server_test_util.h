// Helpers for the emulator's network tests: start an in-process emulator on free loopback ports,
// talk to it with the generated gRPC stub, encode rows with protobuf's own DynamicMessage (an
// encoder independent of the project's), and read Delta tables back through Parquet.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/grpcpp.h>

#include "server/emulator.h"
#include "zerobus.grpc.pb.h"

namespace arrow_zerobus::emulator::testing {

namespace zb = databricks::zerobus;

// A directory removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Options every test starts from: Delta sink in `dir`, fast commits, no fsync, one principal
// "test-client" / "test-secret".
EmulatorOptions TestOptions(const std::string& dir);

// message Row { required int64 id = 1; optional string name = 2; optional double value = 3; }
google::protobuf::DescriptorProto RowDescriptor();

// Encodes rows of RowDescriptor() with protobuf's DynamicMessage.
class RowEncoder {
 public:
  RowEncoder();
  std::string Encode(int64_t id, const std::string* name, const double* value) const;
  std::string Encode(int64_t id, const std::string& name, double value) const {
    return Encode(id, &name, &value);
  }

 private:
  google::protobuf::DescriptorPool pool_;
  const google::protobuf::Descriptor* descriptor_ = nullptr;
  mutable google::protobuf::DynamicMessageFactory factory_;
};

// One EphemeralStream call with the sync API and a deadline so a bug cannot hang the test.
struct StreamCall {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReaderWriter<zb::EphemeralStreamRequest, zb::EphemeralStreamResponse>>
      stream;

  bool Write(const zb::EphemeralStreamRequest& r) { return stream->Write(r); }
  bool Read(zb::EphemeralStreamResponse* r) { return stream->Read(r); }
  // Half-close, read what is left, return the final status.
  grpc::Status Close(std::vector<zb::EphemeralStreamResponse>* rest = nullptr);
  // Reads until an ack for `offset` (or the stream ends); returns every ack value seen.
  std::vector<int64_t> ReadAcksUntil(int64_t offset);
};

class Client {
 public:
  // `endpoint` like "127.0.0.1:1234"; `creds` nullptr = insecure.
  explicit Client(const std::string& target,
                  std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);

  // Opens the RPC with the given metadata (empty token / table = header not sent).
  StreamCall Open(const std::string& token, const std::string& table_header,
                  std::chrono::milliseconds deadline = std::chrono::seconds(30));

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<zb::Zerobus::Stub> stub_;
};

zb::EphemeralStreamRequest CreateRequest(const std::string& table,
                                         const google::protobuf::DescriptorProto* descriptor,
                                         zb::RecordType type = zb::PROTO);
zb::EphemeralStreamRequest ProtoRecord(int64_t offset, std::string bytes);
zb::EphemeralStreamRequest ProtoBatch(int64_t offset, std::vector<std::string> records);
zb::EphemeralStreamRequest JsonRecord(int64_t offset, std::string json);
zb::EphemeralStreamRequest JsonBatch(int64_t offset, std::vector<std::string> records);

// Opens a stream and completes create_stream; fails the test (ADD_FAILURE) if refused.
// Returns the stream id through `stream_id`.
StreamCall OpenCreated(Client& client, const std::string& token, const std::string& table,
                       const google::protobuf::DescriptorProto* descriptor,
                       zb::RecordType type = zb::PROTO, std::string* stream_id = nullptr);

// Opens a stream, sends create_stream and returns the status the server ends it with (OK if
// it answered create_stream_response instead).
grpc::Status CreateStatus(Client& client, const std::string& token, const std::string& header,
                          const zb::EphemeralStreamRequest& create);

// "Bearer <token>" for a token granting `table` from the emulator's token store.
std::string BearerFor(Emulator& emulator, const std::string& table,
                      std::chrono::seconds lifetime = std::chrono::seconds(600));

// All rows of the Delta table at `table_dir`: the Parquet files its log adds (and does not
// remove), concatenated, sorted by nothing (file order).
arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(const std::string& table_dir);

std::string Base64(const std::string& in);

// Runs an HTTP request against the emulator's HTTP side; returns status and body.
struct HttpResult {
  int status = 0;
  std::string body;
};
HttpResult HttpGet(const Emulator& emulator, const std::string& path,
                   const std::string& bearer = "");
HttpResult HttpPost(const Emulator& emulator, const std::string& path, const std::string& body,
                    const std::string& content_type,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});
HttpResult HttpDelete(const Emulator& emulator, const std::string& path);

// Waits (at most 10 s) until every stream's RPC has ended on the server: a client's Close
// returns once it has the status, possibly before the server's reactor has recorded the end.
// False on timeout.
bool WaitForStreamsEnded(const Emulator& emulator);

}  // namespace arrow_zerobus::emulator::testing
