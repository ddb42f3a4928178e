#include "http/http_frontend.h"

#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "decode/table_schema.h"
#include "server/auth.h"
#include "server/faults.h"
#include "store/table_store.h"

namespace arrow_zerobus::emulator {

namespace {

using json = nlohmann::json;

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Messages may quote client input (a table name from the URL, percent-decoded to any bytes);
  // invalid UTF-8 becomes U+FFFD instead of dump() throwing, which httplib answers with an
  // empty 500.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ApiError(httplib::Response& res, int status, std::string_view code, std::string message) {
  Reply(res, status, json{{"error_code", std::string(code)}, {"message", std::move(message)}});
}

// httplib serves a connection on one pool thread from accept to close, blocked in recv while a
// request is incomplete or the connection idles between keep-alive requests. Its default pool
// is fixed (8 threads on a small machine), so a few slow or idle clients stalled every other
// request, the token endpoint included. This pool starts another thread whenever a connection
// arrives and no thread is idle, up to `max_threads` (threads stay until shutdown); the
// timeouts set in Start bound how long a connection can hold its thread.
class GrowingThreadPool final : public httplib::TaskQueue {
 public:
  explicit GrowingThreadPool(size_t max_threads) : max_threads_(max_threads) {}
  ~GrowingThreadPool() override { shutdown(); }

  // Called only by httplib's accept loop.
  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { Work(); });
    }
    wake_.notify_one();
  }

  // Called by the accept loop once it has ended: queued connections are still served.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stop_ = false;
};

// Each connection holds a thread (and a file descriptor) until it closes or times out; 256
// leaves room under the usual 1024-descriptor limit for the gRPC side and the tables.
constexpr size_t kMaxHttpThreads = 256;

}  // namespace

HttpFrontend::HttpFrontend(HttpContext context) : context_(std::move(context)) {}

HttpFrontend::~HttpFrontend() { Stop(); }

arrow::Status HttpFrontend::Start(const std::string& host, int port,
                                  const std::string& tls_cert_file,
                                  const std::string& tls_key_file) {
  if (!tls_cert_file.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(tls_cert_file.c_str(), tls_key_file.c_str());
    if (!ssl->is_valid()) {
      return arrow::Status::Invalid("HTTP side: cannot load TLS certificate '", tls_cert_file,
                                    "' / key '", tls_key_file, "'");
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  Routes();
  server_->new_task_queue = [] { return new GrowingThreadPool(kMaxHttpThreads); };
  // Bound how long one connection holds its thread. A request that stops arriving, or an
  // answer the client stops reading, is given up after 3 s of silence (httplib: 5 s); httplib
  // then keeps the connection for the keep-alive timeout, which is 3 s too (httplib: 5 s), so a
  // stalled client is gone after about 6 s. Clients that pool connections (the SDKs do) may
  // send up to 100 requests on one (httplib: 5).
  server_->set_read_timeout(3, 0);
  server_->set_write_timeout(3, 0);
  server_->set_keep_alive_timeout(3);
  server_->set_keep_alive_max_count(100);
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and
  // share its traffic; only SO_REUSEADDR (quick restarts), so a port in use is an error.
  // The socket is also remembered to raise its backlog below, right after bind.
  auto listen_sock = std::make_shared<socket_t>(INVALID_SOCKET);
  server_->set_socket_options([listen_sock](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listen_sock = sock;
  });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    server_.reset();
    return arrow::Status::IOError("HTTP side: cannot bind ", host, ":", port);
  }
  // httplib listens with a backlog of 5 (compiled in). When more connections arrive at once
  // than its accept thread takes in (a burst of clients, or that thread waiting for a CPU on a
  // loaded machine), the rest were dropped and each client's TCP retried only after 1 s.
  // listen() on a listening socket just sets a new backlog.
  if (*listen_sock != INVALID_SOCKET) ::listen(*listen_sock, SOMAXCONN);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the accept loop runs, so wait for it (the socket already listens).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server_->is_running()) {
    Stop();
    return arrow::Status::IOError("HTTP side: the server did not start on ", host, ":", port);
  }
  return arrow::Status::OK();
}

void HttpFrontend::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void HttpFrontend::Routes() {
  httplib::Server& s = *server_;
  HttpContext& ctx = context_;

  s.Post("/oidc/v1/token", [&ctx](const httplib::Request& req, httplib::Response& res) {
    HttpReply reply = ctx.tokens->HandleTokenRequest(req.get_header_value("Authorization"),
                                                     req.get_header_value("Content-Type"),
                                                     req.body);
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
  });

  s.Get(R"(/api/2\.1/unity-catalog/tables/([^/]+))",
        [&ctx](const httplib::Request& req, httplib::Response& res) {
          if (!ctx.no_auth) {
            AuthCheck check = ctx.tokens->CheckAnyToken(req.get_header_value("Authorization"));
            if (!check.ok()) return ApiError(res, 401, "UNAUTHENTICATED", check.message);
          }
          std::string name = req.matches[1];
          auto parts = SplitTableName(name);
          if (!parts.ok()) {
            return ApiError(res, 400, "INVALID_PARAMETER_VALUE", parts.status().message());
          }
          auto schema = ctx.store->GetSchema(name);
          if (!schema.ok()) {
            // Invalid: a part with characters a table name cannot hold (letters, digits and
            // underscores only); anything else is a name that could exist but does not.
            if (schema.status().IsInvalid()) {
              return ApiError(res, 400, "INVALID_PARAMETER_VALUE", schema.status().message());
            }
            return ApiError(res, 404, "TABLE_DOES_NOT_EXIST",
                            "Table '" + name + "' does not exist.");
          }
          json body = {{"name", parts->table},
                       {"catalog_name", parts->catalog},
                       {"schema_name", parts->schema},
                       {"full_name", name},
                       {"table_type", "MANAGED"},
                       {"data_source_format", "DELTA"},
                       {"columns", json::parse(UnityCatalogColumnsJson(**schema))}};
          auto path = ctx.store->TablePath(name);
          if (path.ok() && !path->empty()) body["storage_location"] = "file://" + *path;
          Reply(res, 200, body);
        });

  s.Get("/admin/stats", [&ctx](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, ctx.stats());
  });

  s.Get("/admin/faults", [&ctx](const httplib::Request&, httplib::Response& res) {
    json rules = json::array();
    for (const auto& [id, rule] : ctx.faults->Rules()) {
      json j = FaultRuleToJson(rule);
      j["id"] = id;
      rules.push_back(std::move(j));
    }
    Reply(res, 200, json{{"rules", std::move(rules)}});
  });

  // A rule object, or an array of them. Three keys are actions rather than rules:
  // "expire_tokens": true/false/N, "revoke_tokens": true and "block_creation_s": T (optionally
  // with "table").
  s.Post("/admin/faults", [&ctx](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "body is not JSON");
    json items = body.is_array() ? body : json::array({body});
    // Validate everything before applying anything.
    std::vector<FaultRule> rules;
    std::vector<bool> has_rule;
    bool set_lifetime = false;
    std::optional<std::chrono::seconds> lifetime;  // nullopt: back to --token-lifetime-s
    bool revoke = false;
    std::vector<std::pair<std::string, double>> blocks;
    for (auto& item : items) {
      if (!item.is_object()) {
        return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "a fault must be a JSON object");
      }
      std::string table = item.contains("table") && item["table"].is_string()
                              ? item["table"].get<std::string>()
                              : "";
      if (item.contains("expire_tokens")) {
        // New tokens get a short lifetime and really expire at their expires_in, as real
        // tokens do; tokens already issued keep theirs. true = 1 s, the shortest expires_in
        // can state; false = the configured lifetime again.
        const json& v = item["expire_tokens"];
        if (v.is_boolean()) {
          lifetime = v.get<bool>() ? std::optional(std::chrono::seconds(1)) : std::nullopt;
        } else if (v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= 86400) {
          lifetime = std::chrono::seconds(v.get<int64_t>());
        } else {
          return ApiError(res, 400, "INVALID_PARAMETER_VALUE",
                          "'expire_tokens' must be true, false or whole seconds from 1 to 86400");
        }
        set_lifetime = true;
        item.erase("expire_tokens");
      }
      if (item.contains("revoke_tokens")) {
        if (!item["revoke_tokens"].is_boolean()) {
          return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "'revoke_tokens' must be a bool");
        }
        revoke = revoke || item["revoke_tokens"].get<bool>();
        item.erase("revoke_tokens");
      }
      if (item.contains("block_creation_s")) {
        const json& v = item["block_creation_s"];
        if (!v.is_number() || v.get<double>() < 0) {
          return ApiError(res, 400, "INVALID_PARAMETER_VALUE",
                          "'block_creation_s' must be a non-negative number");
        }
        blocks.emplace_back(table, v.get<double>());
        item.erase("block_creation_s");
      }
      bool only_table = item.size() == 1 && item.contains("table");
      if (item.empty() || only_table) {
        if (only_table) {
          auto parts = SplitTableName(table);
          if (!parts.ok()) {
            return ApiError(res, 400, "INVALID_PARAMETER_VALUE", parts.status().message());
          }
        }
        continue;
      }
      auto rule = FaultRuleFromJson(item);
      if (!rule.ok()) return ApiError(res, 400, "INVALID_PARAMETER_VALUE", rule.status().message());
      rules.push_back(std::move(*rule));
    }
    json ids = json::array();
    for (auto& r : rules) ids.push_back(ctx.faults->Add(std::move(r)));
    for (auto& [table, seconds] : blocks) {
      ctx.faults->BlockCreation(table, std::chrono::milliseconds(
                                           static_cast<int64_t>(seconds * 1000.0)));
    }
    if (set_lifetime) ctx.tokens->SetLifetimeOverride(lifetime);
    if (revoke) ctx.tokens->RevokeAll();
    Reply(res, 200, json{{"ids", std::move(ids)}});
  });

  s.Delete("/admin/faults", [&ctx](const httplib::Request&, httplib::Response& res) {
    ctx.faults->Clear();
    ctx.tokens->SetLifetimeOverride(std::nullopt);
    Reply(res, 200, json{{"cleared", true}});
  });
}

}  // namespace arrow_zerobus::emulator
