#include "client_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <parquet/arrow/reader.h>

#include "zerobus.pb.h"

namespace arrow_zerobus::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("az_client_" + std::to_string(rd()) + std::to_string(rd())))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

emulator::EmulatorOptions EmulatorTestOptions(const std::string& dir, emulator::SinkKind sink) {
  auto o = emulator::EmulatorOptions::Defaults();
  o.data_dir = dir;
  o.sink = sink;
  o.commit_interval_ms = 2;
  o.fsync = false;
  o.principals = {{kClientId, kClientSecret}};
  return o;
}

std::unique_ptr<emulator::Emulator> StartEmulator(emulator::EmulatorOptions options) {
  auto emu = std::make_unique<emulator::Emulator>(std::move(options));
  auto st = emu->Start();
  if (!st.ok()) {
    ADD_FAILURE_AT(__FILE__, __LINE__) << "emulator did not start: " << st.ToString();
    return nullptr;
  }
  return emu;
}

std::shared_ptr<arrow::Schema> RowSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), /*nullable=*/false),
                        arrow::field("name", arrow::utf8())});
}

std::shared_ptr<arrow::RecordBatch> MakeRows(int64_t first_id, int64_t n) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < n; ++i) {
    (void)ids.Append(first_id + i);
    if ((first_id + i) % 7 == 3) {
      (void)names.AppendNull();
    } else {
      (void)names.Append("row-" + std::to_string(first_id + i));
    }
  }
  return arrow::RecordBatch::Make(RowSchema(), n, {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

EncodedBatch EncodeRows(const arrow::RecordBatch& batch, int64_t max_request_bytes) {
  EncodeOptions eo = EncodeOptions::Defaults();
  eo.max_request_bytes = max_request_bytes;
  auto enc = RecordBatchEncoder::Make(batch.schema(), eo).ValueOrDie();
  return enc->Encode(batch).ValueOrDie();
}

DescriptorProto RowDescriptorFor() { return DescriptorFromArrowSchema(*RowSchema()).ValueOrDie(); }

std::shared_ptr<HeadersProvider> OAuthProvider(const emulator::Emulator& emu,
                                               const std::string& table,
                                               std::shared_ptr<OAuthTokenSource>* source,
                                               const std::string& secret) {
  OAuthOptions o = OAuthOptions::Defaults();
  o.unity_catalog_url = emu.http_endpoint();
  o.client_id = kClientId;
  o.client_secret = SecretString(secret);
  o.table_name = table;
  o.workspace_id = "1234567890";
  o.max_attempts = 2;
  o.retry_backoff = std::chrono::milliseconds(10);
  o.request_timeout = std::chrono::milliseconds(3000);
  auto src = OAuthTokenSource::Make(o).ValueOrDie();
  if (source) *source = src;
  return MakeOAuthHeadersProvider(src);
}

StreamOptions FastOptions(const emulator::Emulator& emu, const std::string& table) {
  StreamOptions o = StreamOptions::Defaults();
  o.endpoint = emu.grpc_endpoint();
  o.table_name = table;
  o.descriptor = RowDescriptorFor();
  o.headers_provider = OAuthProvider(emu, table);
  o.recovery_timeout = std::chrono::milliseconds(3000);
  o.recovery_backoff = std::chrono::milliseconds(20);
  o.recovery_backoff_max = std::chrono::milliseconds(100);
  o.recovery_retries = 3;
  o.server_lack_of_ack_timeout = std::chrono::milliseconds(3000);
  o.flush_timeout = std::chrono::milliseconds(20000);
  o.block_timeout = std::chrono::milliseconds(20000);
  return o;
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(emulator::Emulator& emu,
                                                            const std::string& name) {
  ARROW_RETURN_NOT_OK(emu.store().Flush());
  ARROW_ASSIGN_OR_RAISE(std::string dir, emu.store().TablePath(name));
  // Replay the log: files added and not removed.
  std::vector<fs::path> logs;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "_delta_log")) {
    if (e.path().extension() == ".json") logs.push_back(e.path());
  }
  std::sort(logs.begin(), logs.end());
  std::vector<std::string> files;
  for (const auto& log : logs) {
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      if (j.contains("add")) files.push_back(j["add"]["path"].get<std::string>());
      if (j.contains("remove")) {
        auto p = j["remove"]["path"].get<std::string>();
        files.erase(std::remove(files.begin(), files.end(), p), files.end());
      }
    }
  }
  std::vector<std::shared_ptr<arrow::Table>> tables;
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open((fs::path(dir) / f).string()));
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadTable());
    tables.push_back(std::move(table));
  }
  if (tables.empty()) return std::shared_ptr<arrow::Table>();
  return arrow::ConcatenateTables(tables);
}

arrow::Result<std::vector<int64_t>> ReadDeltaIds(emulator::Emulator& emu, const std::string& name) {
  ARROW_ASSIGN_OR_RAISE(auto table, ReadDeltaTable(emu, name));
  if (!table) return std::vector<int64_t>();
  auto col = table->GetColumnByName("id");
  if (!col) return arrow::Status::Invalid("no id column in ", name);
  std::vector<int64_t> ids;
  for (const auto& chunk : col->chunks()) {
    auto arr = std::static_pointer_cast<arrow::Int64Array>(chunk);
    for (int64_t i = 0; i < arr->length(); ++i) ids.push_back(arr->Value(i));
  }
  return ids;
}

EmulatorStreamTotals StreamTotals(emulator::Emulator& emu, const std::string& table) {
  EmulatorStreamTotals t;
  auto j = emu.Stats();
  for (const auto& s : j["streams"]) {
    if (s["table"].get<std::string>() != table) continue;
    ++t.streams;
    t.requests += s["requests"].get<int64_t>();
    t.rows += s["rows"].get<int64_t>();
  }
  return t;
}

int64_t WaitAll(std::vector<arrow::Future<IngestAck>>& futures, std::vector<arrow::Status>* errors,
                std::chrono::milliseconds timeout) {
  int64_t ok = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& f : futures) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (!f.Wait(std::max(left, 0.0))) {
      if (errors) errors->push_back(arrow::Status::IOError("future did not finish in time"));
      continue;
    }
    if (f.status().ok()) {
      ++ok;
    } else if (errors) {
      errors->push_back(f.status());
    }
  }
  return ok;
}

namespace {

int ListenLoopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

bool WaitReadable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

}  // namespace

ScriptedHttpServer::ScriptedHttpServer(std::vector<Reply> replies) : replies_(std::move(replies)) {
  listen_fd_ = ListenLoopback(&port_);
  thread_ = std::thread([this] { Serve(); });
}

ScriptedHttpServer::~ScriptedHttpServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<std::string> ScriptedHttpServer::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

void ScriptedHttpServer::Serve() {
  size_t next = 0;
  while (!stop_) {
    if (!WaitReadable(listen_fd_, 50)) continue;
    int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) continue;
    std::string req;
    char buf[4096];
    // Read headers, then Content-Length bytes of body.
    size_t body_needed = std::string::npos;
    size_t header_end = std::string::npos;
    while (WaitReadable(c, 2000)) {
      ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = req.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string lower = req.substr(0, header_end);
          for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          auto cl = lower.find("content-length:");
          body_needed = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15));
        }
      }
      if (header_end != std::string::npos && req.size() >= header_end + 4 + body_needed) break;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      requests_.push_back(req);
    }
    const Reply& r = replies_[std::min(next, replies_.size() - 1)];
    ++next;
    std::string resp = "HTTP/1.1 " + std::to_string(r.status) + " X\r\nContent-Type: application/json\r\n" +
                       "Content-Length: " + std::to_string(r.body.size()) +
                       "\r\nConnection: close\r\n\r\n" + r.body;
    ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
    ::close(c);
  }
}

SilentListener::SilentListener() {
  listen_fd_ = ListenLoopback(&port_);
  thread_ = std::thread([this] {
    while (!stop_) {
      if (!WaitReadable(listen_fd_, 50)) continue;
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c >= 0) conns_.push_back(c);
    }
  });
}

SilentListener::~SilentListener() {
  stop_ = true;
  thread_.join();
  for (int c : conns_) ::close(c);
  ::close(listen_fd_);
}

ConnectProxy::ConnectProxy() {
  listen_fd_ = ListenLoopback(&port_);
  accept_thread_ = std::thread([this] {
    while (!stop_) {
      if (!WaitReadable(listen_fd_, 50)) continue;
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::lock_guard<std::mutex> lk(mu_);
      relays_.emplace_back([this, c] { Relay(c); });
    }
  });
}

ConnectProxy::~ConnectProxy() {
  stop_ = true;
  accept_thread_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lk(mu_);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
  ::close(listen_fd_);
}

std::vector<std::string> ConnectProxy::targets() const {
  std::lock_guard<std::mutex> lk(mu_);
  return targets_;
}

void ConnectProxy::Relay(int client) {
  std::string head;
  char buf[16384];
  while (head.find("\r\n\r\n") == std::string::npos && WaitReadable(client, 2000)) {
    ssize_t n = ::recv(client, buf, sizeof(buf), 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  // "CONNECT host:port HTTP/1.1"
  const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
  if (head.rfind("CONNECT ", 0) != 0 || sp2 == std::string::npos) {
    ::close(client);
    return;
  }
  const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
  {
    std::lock_guard<std::mutex> lk(mu_);
    targets_.push_back(target);
  }
  const int port = std::stoi(target.substr(target.rfind(':') + 1));
  int up = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const char kBad[] = "HTTP/1.1 502 Bad Gateway\r\n\r\n";
    ::send(client, kBad, sizeof(kBad) - 1, MSG_NOSIGNAL);
    ::close(up);
    ::close(client);
    return;
  }
  const char kOk[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  ::send(client, kOk, sizeof(kOk) - 1, MSG_NOSIGNAL);
  // Anything after the request head already belongs to the tunnel.
  const size_t extra = head.find("\r\n\r\n") + 4;
  if (extra < head.size()) ::send(up, head.data() + extra, head.size() - extra, MSG_NOSIGNAL);
  pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
  while (!stop_) {
    if (::poll(fds, 2, 50) <= 0) continue;
    bool closed = false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          closed = true;
          break;
        }
        ::send(fds[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
    }
    if (closed) break;
  }
  ::close(up);
  ::close(client);
}

struct ScriptedZerobusServer::State : grpc::CallbackGenericService {
  Mode mode = Mode::kNormal;
  mutable std::mutex mu;
  std::map<std::string, std::string> metadata;
  std::vector<int64_t> offsets;
  int streams = 0;
  std::unique_ptr<grpc::Server> server;

  class Reactor : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(State* state, grpc::GenericCallbackServerContext* ctx) : state_(state), ctx_(ctx) {
      {
        std::lock_guard<std::mutex> lk(state_->mu);
        ++state_->streams;
        state_->metadata.clear();
        for (const auto& [k, v] : ctx->client_metadata()) {
          state_->metadata[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
        }
      }
      StartSendInitialMetadata();
      StartRead(&req_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        End();
        return;
      }
      databricks::zerobus::EphemeralStreamRequest req;
      std::vector<grpc::Slice> slices;
      (void)req_.Dump(&slices);
      std::string bytes;
      for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      req.ParseFromString(bytes);
      Handle(req);
      StartRead(&req_);
    }
    void OnWriteDone(bool ok) override {
      std::unique_lock<std::mutex> lk(mu_);
      queue_.erase(queue_.begin());
      writing_ = false;
      Pump(lk);
    }
    void OnCancel() override { End(); }
    void OnDone() override { delete this; }

   private:
    using Response = databricks::zerobus::EphemeralStreamResponse;
    void Handle(const databricks::zerobus::EphemeralStreamRequest& req) {
      if (req.has_create_stream()) {
        if (state_->mode == Mode::kNeverAnswerCreate) return;
        Response r;
        r.mutable_create_stream_response()->set_stream_id("scripted");
        Send(r.SerializeAsString());
        return;
      }
      const int64_t off = req.has_ingest_record_batch() ? req.ingest_record_batch().offset_id()
                                                        : req.ingest_record().offset_id();
      {
        std::lock_guard<std::mutex> lk(state_->mu);
        state_->offsets.push_back(off);
      }
      ++received_;
      Response r;
      switch (state_->mode) {
        case Mode::kNormal:
          r.mutable_ingest_record_response()->set_durability_ack_up_to_offset(off);
          Send(r.SerializeAsString());
          break;
        case Mode::kAckBackwards:
          if (received_ == 2) {
            r.mutable_ingest_record_response()->set_durability_ack_up_to_offset(1);
            Send(r.SerializeAsString());
            r.mutable_ingest_record_response()->set_durability_ack_up_to_offset(0);
            Send(r.SerializeAsString());
          }
          break;
        case Mode::kAckBeyondSent:
          r.mutable_ingest_record_response()->set_durability_ack_up_to_offset(5);
          Send(r.SerializeAsString());
          break;
        case Mode::kAckWithoutField:
          r.mutable_ingest_record_response();
          Send(r.SerializeAsString());
          break;
        case Mode::kGarbage:
          Send(std::string("\xff\xff\xff\xff", 4));
          break;
        case Mode::kNeverAnswerCreate:
          break;
      }
    }
    void Send(std::string bytes) {
      std::unique_lock<std::mutex> lk(mu_);
      grpc::Slice slice(bytes);
      queue_.emplace_back(&slice, 1);
      Pump(lk);
    }
    void End() {
      std::unique_lock<std::mutex> lk(mu_);
      finish_wanted_ = true;
      Pump(lk);
    }
    void Pump(std::unique_lock<std::mutex>& lk) {
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        writing_ = true;
        grpc::ByteBuffer* next = &queue_.front();
        lk.unlock();
        StartWrite(next);
        return;
      }
      if (finish_wanted_) {
        finished_ = true;
        lk.unlock();
        Finish(grpc::Status::OK);
      }
    }
    State* state_;
    grpc::GenericCallbackServerContext* ctx_;
    grpc::ByteBuffer req_;
    std::mutex mu_;
    std::deque<grpc::ByteBuffer> queue_;
    bool writing_ = false;
    bool finish_wanted_ = false;
    bool finished_ = false;
    int received_ = 0;
  };

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Reactor(this, ctx);
  }
};

ScriptedZerobusServer::ScriptedZerobusServer(Mode mode) : state_(std::make_shared<State>()) {
  state_->mode = mode;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterCallbackGenericService(state_.get());
  state_->server = builder.BuildAndStart();
}

ScriptedZerobusServer::~ScriptedZerobusServer() {
  state_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  state_->server->Wait();
}

std::map<std::string, std::string> ScriptedZerobusServer::metadata() const {
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->metadata;
}

std::vector<int64_t> ScriptedZerobusServer::offsets() const {
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->offsets;
}

int ScriptedZerobusServer::streams() const {
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->streams;
}

std::string Base64(const std::string& in) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {kChars[v >> 18], kChars[(v >> 12) & 63], kChars[(v >> 6) & 63], kChars[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {kChars[v >> 18], kChars[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kChars[v >> 18], kChars[(v >> 12) & 63], kChars[(v >> 6) & 63], '='};
  }
  return out;
}

int ClosedPort() {
  int port = 0;
  int fd = ListenLoopback(&port);
  ::close(fd);  // nothing listens there now
  return port;
}

bool MakeSelfSignedCert(const std::string& dir, const std::string& name, std::string* cert,
                        std::string* key) {
  *cert = dir + "/" + name + ".crt";
  *key = dir + "/" + name + ".key";
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      *key + " -out " + *cert + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace arrow_zerobus::testing
