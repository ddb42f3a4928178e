// See HoldGrpcCallbackQueue in wrapper_internal.h.
#include <chrono>
#include <future>
#include <memory>
#include <mutex>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include "wrapper/wrapper_internal.h"

namespace arrow_zerobus::internal {

void HoldGrpcCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A channel that has made one callback-API call keeps a reference on gRPC's process-wide
    // callback queue for as long as it lives; it is leaked on purpose. The call goes to a
    // loopback port with a short deadline; how it ends does not matter.
    auto* channel = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
    grpc::GenericStub stub(*channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    grpc::Slice payload("x", 1);
    grpc::ByteBuffer request(&payload, 1);
    grpc::ByteBuffer response;
    std::promise<void> done;
    stub.UnaryCall(&ctx, "/arrow_zerobus.Keep/Hold", grpc::StubOptions(), &request, &response,
                   [&done](const grpc::Status&) { done.set_value(); });
    done.get_future().wait();
  });
}

}  // namespace arrow_zerobus::internal
