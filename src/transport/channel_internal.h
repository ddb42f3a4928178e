// gRPC channel for a Zerobus endpoint: TLS with the system roots (or a CA file), plaintext only
// for http://, the project's user-agent (common/user_agent.h), and settings for large messages.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <arrow/result.h>
#include <grpcpp/channel.h>

#include "common/endpoint.h"

namespace arrow_zerobus::internal {

struct ChannelSettings {
  Endpoint endpoint;
  std::string ca_file;           // empty: system roots
  std::string application_name;  // appended to the user-agent
  // gRPC's connection attempt timeout (it is also its minimum reconnect backoff).
  std::chrono::milliseconds connect_timeout{20'000};
};

// Reads a PEM bundle; Configuration error naming `option` when it is missing, unreadable or has
// no certificate.
arrow::Result<std::string> ReadCaFile(const std::string& path, const std::string& option);

// A new channel with its own connection (streams do not share one TCP connection, so each gets
// its own I/O). Proxies: gRPC's own handling of grpc_proxy/https_proxy/http_proxy and
// no_grpc_proxy/no_proxy applies.
arrow::Result<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelSettings& settings,
                                                          const std::string& ca_pem);

}  // namespace arrow_zerobus::internal
