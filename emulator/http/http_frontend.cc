#include "http/http_frontend.h"

#include <sys/socket.h>

#include <chrono>

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
  res.set_content(body.dump(), "application/json");
}

void ApiError(httplib::Response& res, int status, std::string_view code, std::string message) {
  Reply(res, status, json{{"error_code", std::string(code)}, {"message", std::move(message)}});
}

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
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and
  // share its traffic; only SO_REUSEADDR (quick restarts), so a port in use is an error.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
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

  // A rule object, or an array of them. Two keys are actions rather than rules:
  // "expire_tokens": true and "block_creation_s": T (optionally with "table").
  s.Post("/admin/faults", [&ctx](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "body is not JSON");
    json items = body.is_array() ? body : json::array({body});
    // Validate everything before applying anything.
    std::vector<FaultRule> rules;
    std::vector<bool> has_rule;
    bool expire = false;
    std::vector<std::pair<std::string, double>> blocks;
    for (auto& item : items) {
      if (!item.is_object()) {
        return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "a fault must be a JSON object");
      }
      std::string table = item.contains("table") && item["table"].is_string()
                              ? item["table"].get<std::string>()
                              : "";
      if (item.contains("expire_tokens")) {
        if (!item["expire_tokens"].is_boolean()) {
          return ApiError(res, 400, "INVALID_PARAMETER_VALUE", "'expire_tokens' must be a bool");
        }
        expire = expire || item["expire_tokens"].get<bool>();
        item.erase("expire_tokens");
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
    if (expire) ctx.tokens->ExpireAll();
    Reply(res, 200, json{{"ids", std::move(ids)}, {"expired_tokens", expire}});
  });

  s.Delete("/admin/faults", [&ctx](const httplib::Request&, httplib::Response& res) {
    ctx.faults->Clear();
    Reply(res, 200, json{{"cleared", true}});
  });
}

}  // namespace arrow_zerobus::emulator
