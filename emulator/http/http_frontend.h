// The emulator's HTTP side (cpp-httplib): the OAuth token endpoint, the Unity Catalog tables
// endpoint and the admin API (stats, faults). Routes are listed in docs/emulator.md.
//
// Thread-safety: Start/Stop from one thread; handlers run on httplib's worker threads and only
// touch thread-safe objects.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <arrow/status.h>
#include <nlohmann/json_fwd.hpp>

namespace httplib {
class Server;
}

namespace arrow_zerobus::emulator {

class TokenStore;
class FaultRegistry;
class TableStore;

struct HttpContext {
  TokenStore* tokens = nullptr;
  FaultRegistry* faults = nullptr;
  std::shared_ptr<TableStore> store;
  bool no_auth = false;
  // The /admin/stats document.
  std::function<nlohmann::json()> stats;
};

class HttpFrontend {
 public:
  explicit HttpFrontend(HttpContext context);
  ~HttpFrontend();

  // Binds host:port (0 = a free port) and serves on a background thread. With cert and key
  // (PEM files) it serves HTTPS.
  arrow::Status Start(const std::string& host, int port, const std::string& tls_cert_file,
                      const std::string& tls_key_file);
  void Stop();
  int port() const { return port_; }

 private:
  void Routes();

  HttpContext context_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace arrow_zerobus::emulator
