// The console wire protocol: framing and message encoding
// (docs/console-protocol.md).
//
// Everything here is a pure function over bytes: no I/O, no globals, no
// threads, so the parser can be fuzzed and unit-tested in isolation. Every
// byte a client sends is untrusted; the decoders never read past their input,
// never allocate more than the input's size, and reject trailing bytes, so a
// valid message has exactly one encoding (the fuzzer checks the round trip).
//
//   std::string in = ...;                       // bytes read from a socket
//   Frame frame;
//   absl::StatusOr<size_t> used = ParseFrame(in, kDefaultMaxPayload, &frame);
//   if (!used.ok()) { /* malformed or oversized: send an error, close */ }
//   else if (*used == 0) { /* need more bytes */ }
//   else {
//     in.erase(0, *used);
//     if (frame.type == FrameType::kRequest) {
//       absl::StatusOr<RequestMessage> req = DecodeRequest(frame.payload);
//     }
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace annex::console {

// Protocol version spoken by this build. Bumped on any incompatible change.
inline constexpr uint16_t kProtocolVersion = 1;
// First four bytes of a HELLO payload, so a stray client speaking something
// else is told so instead of being misparsed.
inline constexpr absl::string_view kHelloMagic = "ANNX";
// Bytes before the payload: 4-byte big-endian length + 1 type byte.
inline constexpr size_t kFrameHeaderSize = 5;
// Default and absolute upper bound for a frame's payload.
inline constexpr size_t kDefaultMaxPayload = size_t{1} << 20;    // 1 MiB
inline constexpr size_t kAbsoluteMaxPayload = size_t{64} << 20;  // 64 MiB

enum class FrameType : uint8_t {
  kHello = 1,      // client -> server, first frame
  kWelcome = 2,    // server -> client, answer to HELLO
  kRequest = 3,    // client -> server
  kInterrupt = 4,  // client -> server
  kReply = 5,      // server -> client
  kError = 6,      // server -> client
};

// True for the type bytes listed above.
bool IsKnownFrameType(uint8_t type);

// One frame as cut from the byte stream. `type` is the raw byte: an unknown
// type is a well-delimited frame the receiver may answer with an error.
struct Frame {
  uint8_t type = 0;
  std::string payload;
};

// Cuts one frame from the front of `input`.
// Returns 0 when `input` holds only part of a frame (read more), the number
// of bytes the frame used when `*out` was filled, InvalidArgument for a zero
// length field, ResourceExhausted when the announced payload exceeds
// `max_payload` (checked from the header alone, before the payload arrives).
// After an error the stream cannot be resynchronized: close it.
absl::StatusOr<size_t> ParseFrame(absl::string_view input, size_t max_payload,
                                  Frame* out);

// Encodes a frame. The caller keeps payloads under the peer's limit.
std::string EncodeFrame(FrameType type, absl::string_view payload);

// ---- Messages (payloads) ----

struct HelloMessage {
  uint16_t version = kProtocolVersion;
  std::string token;        // TCP only; empty on the Unix socket
  std::string client_name;  // free text for logs, e.g. "annex attach"
};

// Bits of WelcomeMessage::capabilities.
inline constexpr uint32_t kCapExecTarget = 1u << 0;

struct WelcomeMessage {
  uint16_t version = kProtocolVersion;
  uint64_t client_id = 0;  // the server's id of this client, from 1
  uint32_t capabilities = 0;
  uint32_t max_payload = 0;  // the largest payload the server accepts
  std::string program;
  std::string python_version;
};

enum class RequestKind : uint8_t {
  kExec = 1,         // run a program (statements) in the annex
  kInteractive = 2,  // REPL input; may answer kIncomplete
  kThreads = 3,      // list the target's threads
  kStacks = 4,       // the target's stacks
  kInterruptThread =
      5,            // raise KeyboardInterrupt in a target thread (text = id)
  kExecTarget = 6,  // run code in the target; needs the permission
  kHelp = 7,        // answered by the server itself
};
bool IsKnownRequestKind(uint8_t kind);

struct RequestMessage {
  uint32_t request_id = 0;
  RequestKind kind = RequestKind::kExec;
  std::string text;
};

struct InterruptMessage {
  uint32_t request_id = 0;  // 0: whatever runs now
};

enum class ReplyStatus : uint8_t {
  kOk = 0,
  kError = 1,        // the code raised; `error` holds the traceback
  kIncomplete = 2,   // kInteractive only: need more lines
  kInterrupted = 3,  // cancelled by an INTERRUPT or disconnect
  kRefused = 4,      // not permitted, queue full, unknown kind
};
bool IsKnownReplyStatus(uint8_t status);

struct ReplyMessage {
  uint32_t request_id = 0;
  ReplyStatus status = ReplyStatus::kOk;
  int32_t exit_code = 0;  // e.g. SystemExit(n); 0 otherwise
  std::string output;
  std::string error;
};

enum class ErrorCode : uint16_t {
  kMalformedFrame = 1,
  kFrameTooLarge = 2,
  kUnknownFrameType = 3,
  kProtocolViolation = 4,
  kUnsupportedVersion = 5,
  kPermissionDenied = 6,
  kTooManyClients = 7,
  kIdleTimeout = 8,
  kOutputOverflow = 9,
  kServerStopping = 10,
};

struct ErrorMessage {
  uint16_t code = 0;   // an ErrorCode; unknown values are kept as is
  bool fatal = false;  // the sender closes the connection after this frame
  std::string message;
};

// Encoders return a complete frame (header included).
std::string EncodeHello(const HelloMessage& m);
std::string EncodeWelcome(const WelcomeMessage& m);
std::string EncodeRequest(const RequestMessage& m);
std::string EncodeInterrupt(const InterruptMessage& m);
std::string EncodeReply(const ReplyMessage& m);
std::string EncodeError(const ErrorMessage& m);

// Decoders take a payload (no header). InvalidArgument on truncation,
// trailing bytes, a bad magic, or an out-of-range enum byte.
absl::StatusOr<HelloMessage> DecodeHello(absl::string_view payload);
absl::StatusOr<WelcomeMessage> DecodeWelcome(absl::string_view payload);
absl::StatusOr<RequestMessage> DecodeRequest(absl::string_view payload);
absl::StatusOr<InterruptMessage> DecodeInterrupt(absl::string_view payload);
absl::StatusOr<ReplyMessage> DecodeReply(absl::string_view payload);
absl::StatusOr<ErrorMessage> DecodeError(absl::string_view payload);

// Bytes a reply with empty texts takes on the wire (header included); used
// to cut output so a reply fits the peer's frame limit.
inline constexpr size_t kReplyOverhead = kFrameHeaderSize + 4 + 1 + 4 + 4 + 4;

// Shortens output and error so EncodeReply(m) has a payload of at most
// `max_payload` bytes, marking the cut with a note that gives the sizes; a
// kOk reply that had to be cut becomes kError with exit code 5, so nobody
// takes a cut result for a whole one. No-op when it fits.
void TruncateReplyToFit(size_t max_payload, ReplyMessage* m);

}  // namespace annex::console
