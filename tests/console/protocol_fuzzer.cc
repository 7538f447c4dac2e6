// libFuzzer target for the console wire protocol (monitor/console/protocol.h).
//
// Treats the input as a byte stream from an untrusted client: cuts frames
// until the stream needs more bytes or is rejected, and runs every decoder
// on every payload. Checks, beyond "no crash, no sanitizer report":
//  - ParseFrame never claims more bytes than it was given;
//  - a payload that decodes re-encodes to exactly the same frame bytes (one
//    valid encoding per message);
//  - TruncateReplyToFit always meets its limit.
// Built with clang by tools/fuzz_console.sh; the corpus replay test
// (protocol_corpus_test) runs the same function under gcc in every build.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "monitor/console/protocol.h"

namespace annex::console {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "protocol_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

template <typename Message, typename Decode, typename Encode>
void RoundTrip(const std::string& frame_bytes, const Frame& frame,
               Decode decode, Encode encode) {
  absl::StatusOr<Message> m = decode(frame.payload);
  if (!m.ok()) return;
  // Only frames of the matching type must re-encode byte for byte (the
  // encoder writes its own type byte).
  std::string again = encode(*m);
  Check(again.substr(kFrameHeaderSize) == frame.payload,
        "decode/encode round trip changed the payload");
  if (static_cast<uint8_t>(again[4]) == frame.type) {
    Check(again == frame_bytes, "round trip changed the frame");
  }
}

void FuzzOne(const uint8_t* data, size_t size) {
  std::string stream(reinterpret_cast<const char*>(data), size);
  // Small limit so that "oversized" is reachable; the first byte varies it.
  size_t max_payload = size > 0 ? 16 + data[0] * 16 : 4096;
  size_t offset = 0;
  while (offset < stream.size()) {
    Frame frame;
    absl::string_view rest(stream.data() + offset, stream.size() - offset);
    absl::StatusOr<size_t> used = ParseFrame(rest, max_payload, &frame);
    if (!used.ok() || *used == 0) break;
    Check(*used <= rest.size(), "ParseFrame used more than it was given");
    Check(*used == kFrameHeaderSize + frame.payload.size(),
          "ParseFrame size mismatch");
    std::string bytes(rest.substr(0, *used));
    offset += *used;
    RoundTrip<HelloMessage>(bytes, frame, DecodeHello, EncodeHello);
    RoundTrip<WelcomeMessage>(bytes, frame, DecodeWelcome, EncodeWelcome);
    RoundTrip<RequestMessage>(bytes, frame, DecodeRequest, EncodeRequest);
    RoundTrip<InterruptMessage>(bytes, frame, DecodeInterrupt, EncodeInterrupt);
    RoundTrip<ReplyMessage>(bytes, frame, DecodeReply, EncodeReply);
    RoundTrip<ErrorMessage>(bytes, frame, DecodeError, EncodeError);

    absl::StatusOr<ReplyMessage> reply = DecodeReply(frame.payload);
    if (reply.ok()) {
      size_t limit = frame.payload.size() / 2;
      TruncateReplyToFit(limit, &*reply);
      Check(EncodeReply(*reply).size() - kFrameHeaderSize <=
                std::max(limit, kReplyOverhead - kFrameHeaderSize),
            "TruncateReplyToFit exceeded its limit");
    }
  }
}

}  // namespace
}  // namespace annex::console

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  annex::console::FuzzOne(data, size);
  return 0;
}
