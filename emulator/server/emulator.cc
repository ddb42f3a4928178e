#include "server/emulator.h"

#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "decode/table_schema.h"
#include "http/http_frontend.h"
#include "server/auth.h"
#include "server/scheduler_internal.h"
#include "server/stream_service_internal.h"

namespace arrow_zerobus::emulator {

const char* EmulatorVersion();

namespace {

arrow::Result<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError("cannot read ", what, " file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

arrow::Result<TableDeclaration> LoadTableDeclaration(const std::string& name,
                                                     const std::string& path) {
  ARROW_RETURN_NOT_OK(SplitTableName(name).status());
  ARROW_ASSIGN_OR_RAISE(std::string text, ReadFile(path, "table declaration"));
  auto schema = SchemaFromDeclaration(text);
  if (!schema.ok()) {
    return arrow::Status::Invalid("table declaration '", path, "' for ", name, ": ",
                                  schema.status().message());
  }
  return TableDeclaration{name, *schema};
}

struct Emulator::Impl {
  explicit Impl(EmulatorOptions o)
      : options(std::move(o)), tokens(options.principals, options.token_lifetime) {}

  EmulatorOptions options;
  TokenStore tokens;
  FaultRegistry faults;
  StatsRegistry stats;
  std::shared_ptr<TableStore> store;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<ZerobusService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<HttpFrontend> http;
  int grpc_port = 0;
  bool started = false;
  bool stopped = false;

  bool tls() const { return !options.tls_cert_file.empty(); }

  nlohmann::json Stats() const {
    nlohmann::json j = stats.ToJson(*store);
    j["open_streams"] = stats.open_streams();
    j["tokens_issued"] = tokens.issued_count();
    j["version"] = EmulatorVersion();
    return j;
  }
};

Emulator::Emulator(EmulatorOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Emulator::~Emulator() { (void)Shutdown(); }

arrow::Status Emulator::Start() {
  Impl& d = *impl_;
  if (d.started) return arrow::Status::Invalid("emulator already started");
  arrow::Status st = StartParts();
  if (!st.ok()) {
    // Undo what did start, so the ports and the data directory's lock are free again.
    if (d.http) d.http->Stop();
    if (d.server) d.server->Shutdown();
    if (d.scheduler) d.scheduler->Stop();
    if (d.store) (void)d.store->Close();
    d.http.reset();
    d.server.reset();
    d.service.reset();
    d.store.reset();
    d.scheduler.reset();
    d.faults.SetChangeListener(nullptr);
    return st;
  }
  d.started = true;
  return arrow::Status::OK();
}

arrow::Status Emulator::StartParts() {
  Impl& d = *impl_;
  const EmulatorOptions& o = d.options;
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return arrow::Status::Invalid("TLS needs both a certificate and a key file");
  }
  if (o.max_message_bytes <= 0) {
    return arrow::Status::Invalid("max_message_bytes must be positive");
  }
  if (!o.no_auth && o.principals.empty()) {
    return arrow::Status::Invalid(
        "authentication is on but no principal is configured (give a client id and secret, or "
        "turn authentication off)");
  }

  TableStoreOptions so = TableStoreOptions::Defaults();
  so.data_dir = o.data_dir;
  so.sink = o.sink;
  so.commit_interval_ms = o.commit_interval_ms;
  so.commit_max_rows = o.commit_max_rows;
  so.strict = o.strict;
  so.fsync = o.fsync;
  ARROW_ASSIGN_OR_RAISE(d.store, TableStore::Open(so));
  for (const auto& t : o.tables) {
    auto st = d.store->Declare(t.name, t.schema);
    if (!st.ok()) return st.WithMessage("declaring table ", t.name, ": ", st.message());
  }
  for (const auto& f : o.faults) d.faults.Add(f);
  if (o.block_creation.count() > 0) d.faults.BlockCreation("", o.block_creation);

  d.scheduler = std::make_unique<Scheduler>();
  ServiceContext sc;
  sc.store = d.store;
  sc.tokens = &d.tokens;
  sc.faults = &d.faults;
  sc.scheduler = d.scheduler.get();
  sc.stats = &d.stats;
  sc.no_auth = o.no_auth;
  sc.max_message_bytes = o.max_message_bytes;
  sc.max_pending_bytes_per_stream = o.max_pending_bytes_per_stream;
  sc.log = o.log;
  d.service = std::make_unique<ZerobusService>(sc);
  d.faults.SetChangeListener([service = d.service.get()] { service->KickAll(); });

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (d.tls()) {
    grpc::SslServerCredentialsOptions ssl;
    ARROW_ASSIGN_OR_RAISE(std::string cert, ReadFile(o.tls_cert_file, "TLS certificate"));
    ARROW_ASSIGN_OR_RAISE(std::string key, ReadFile(o.tls_key_file, "TLS key"));
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.host + ":" + std::to_string(o.grpc_port), creds, &d.grpc_port);
  builder.RegisterCallbackGenericService(d.service.get());
  // The protocol limit is checked per request (INVALID_ARGUMENT naming the size, as the
  // protocol doc says); gRPC's own limit sits above it as a memory guard for absurd messages.
  int64_t hard_limit = std::min<int64_t>(
      std::max(2 * o.max_message_bytes, kFlightMinMessageBytes) + (1 << 20), INT32_MAX);
  builder.SetMaxReceiveMessageSize(static_cast<int>(hard_limit));
  // gRPC sets SO_REUSEPORT by default: a second emulator on the same port would then start and
  // silently share the traffic. A port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  d.server = builder.BuildAndStart();
  if (!d.server || d.grpc_port == 0) {
    return arrow::Status::IOError("gRPC side: cannot listen on ", o.host, ":", o.grpc_port);
  }

  HttpContext hc;
  hc.tokens = &d.tokens;
  hc.faults = &d.faults;
  hc.store = d.store;
  hc.no_auth = o.no_auth;
  hc.stats = [this] { return impl_->Stats(); };
  d.http = std::make_unique<HttpFrontend>(std::move(hc));
  return d.http->Start(o.host, o.http_port, o.tls_cert_file, o.tls_key_file);
}

arrow::Status Emulator::Shutdown() {
  Impl& d = *impl_;
  if (!d.started || d.stopped) return arrow::Status::OK();
  d.stopped = true;
  if (d.http) d.http->Stop();
  // Open streams get a short grace period, then are cancelled.
  d.server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  d.server->Wait();
  arrow::Status st = d.store->Close();
  d.scheduler->Stop();
  return st;
}

int Emulator::grpc_port() const { return impl_->grpc_port; }
int Emulator::http_port() const { return impl_->http ? impl_->http->port() : 0; }

std::string Emulator::grpc_endpoint() const {
  return std::string(impl_->tls() ? "https://" : "http://") + impl_->options.host + ":" +
         std::to_string(grpc_port());
}

std::string Emulator::http_endpoint() const {
  return std::string(impl_->tls() ? "https://" : "http://") + impl_->options.host + ":" +
         std::to_string(http_port());
}

TokenStore& Emulator::tokens() { return impl_->tokens; }
FaultRegistry& Emulator::faults() { return impl_->faults; }
TableStore& Emulator::store() { return *impl_->store; }
nlohmann::json Emulator::Stats() const { return impl_->Stats(); }
int64_t Emulator::open_streams() const { return impl_->stats.open_streams(); }
const EmulatorOptions& Emulator::options() const { return impl_->options; }

}  // namespace arrow_zerobus::emulator
