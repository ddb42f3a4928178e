#include "transport/channel_internal.h"

#include <algorithm>
#include <fstream>
#include <future>
#include <sstream>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "arrow_zerobus/errors.h"
#include "common/user_agent.h"

namespace arrow_zerobus::internal {

arrow::Result<std::string> ReadCaFile(const std::string& path, const std::string& option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ConfigurationError(option + " '" + path + "' cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return ConfigurationError(option + " '" + path + "' holds no PEM certificate");
  }
  return pem;
}

namespace {

// gRPC 1.51 (epoll1 poller) runs client callbacks on a process-wide "alternative" completion
// queue that is refcounted by the live channels; when the last channel goes away it shuts the
// queue down and joins its threads. If that happens inside a callback (a stream's last RPC
// finishing), a thread joins itself and the queue is freed under it. One channel that is never
// destroyed keeps the count above zero (and spares recreating those threads per reconnect).
void KeepCallbackQueueAlive() {
  static const bool kept = [] {
    // Intentionally never released. A channel takes its reference on the queue with its first
    // callback call, so make one that ends at once (deadline already passed).
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    auto* keeper = new std::shared_ptr<grpc::Channel>(grpc::CreateCustomChannel(
        "unix:/nonexistent/arrow-zerobus-keeper", grpc::InsecureChannelCredentials(), args));
    grpc::GenericStub stub(*keeper);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now());
    grpc::Slice empty("", 0);
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<void> done;
    stub.UnaryCall(&ctx, "/arrow_zerobus.Keeper/Noop", grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status) { done.set_value(); });
    done.get_future().wait();
    return true;
  }();
  (void)kept;
}

}  // namespace

arrow::Result<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelSettings& settings,
                                                          const std::string& ca_pem) {
  KeepCallbackQueueAlive();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (settings.endpoint.tls) {
    grpc::SslCredentialsOptions ssl;
    // Empty: gRPC's default roots, i.e. the system store (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH
    // overrides it), then its bundled roots.
    ssl.pem_root_certs = ca_pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix(UserAgent(settings.application_name));
  // Responses are small; requests reach 10 MiB.
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  // Own connection per stream (see header).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Recovery has its own backoff; do not let the channel add seconds of reconnect delay.
  // (gRPC uses the "min reconnect backoff" as the timeout of one connection attempt, TLS
  // handshake included: that is the per-attempt timeout.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::min<int64_t>(settings.connect_timeout.count(), INT32_MAX)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(settings.endpoint.target(), creds, args);
  if (!channel) {
    return MakeError(ErrorKind::kConnection, false,
                     "cannot create a gRPC channel to " + settings.endpoint.target());
  }
  return channel;
}

}  // namespace arrow_zerobus::internal
