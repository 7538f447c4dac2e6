// Console wire protocol: framing and message codecs. See protocol.h.
#include "monitor/console/protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace annex::console {
namespace {

// Appends big-endian integers and length-prefixed strings.
class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    U32(static_cast<uint32_t>(v));
  }
  void Str(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void Raw(absl::string_view s) { out_.append(s.data(), s.size()); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote. Every read checks the remaining length first; the
// first failure sticks, so a decoder checks ok() once at the end.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  uint8_t U8() {
    if (!Need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint16_t U16() {
    uint16_t hi = U8();
    return static_cast<uint16_t>((hi << 8) | U8());
  }
  uint32_t U32() {
    uint32_t hi = U16();
    return (hi << 16) | U16();
  }
  uint64_t U64() {
    uint64_t hi = U32();
    return (hi << 32) | U32();
  }
  // A string's length is checked against the bytes actually present before
  // anything is allocated, so a lying length cannot make us allocate.
  std::string Str() {
    uint32_t n = U32();
    if (!Need(n)) return std::string();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  absl::string_view Raw(size_t n) {
    if (!Need(n)) return absl::string_view();
    absl::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  void Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
  }
  // Call after the last field: trailing bytes are an error too.
  absl::Status Finish(absl::string_view what) {
    if (error_.empty() && !in_.empty()) {
      error_ = absl::StrCat(in_.size(), " trailing bytes");
    }
    if (error_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("bad ", what, ": ", error_));
  }

 private:
  bool Need(size_t n) {
    if (!error_.empty()) return false;
    if (in_.size() < n) {
      error_ = "truncated";
      return false;
    }
    return true;
  }
  absl::string_view in_;
  std::string error_;
};

std::string Framed(FrameType type, Writer& w) {
  return EncodeFrame(type, w.Take());
}

}  // namespace

bool IsKnownFrameType(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kHello) &&
         type <= static_cast<uint8_t>(FrameType::kError);
}

bool IsKnownRequestKind(uint8_t kind) {
  return kind >= static_cast<uint8_t>(RequestKind::kExec) &&
         kind <= static_cast<uint8_t>(RequestKind::kHelp);
}

bool IsKnownReplyStatus(uint8_t status) {
  return status <= static_cast<uint8_t>(ReplyStatus::kRefused);
}

absl::StatusOr<size_t> ParseFrame(absl::string_view input, size_t max_payload,
                                  Frame* out) {
  if (input.size() < 4) return 0;
  uint32_t length = (uint32_t{static_cast<uint8_t>(input[0])} << 24) |
                    (uint32_t{static_cast<uint8_t>(input[1])} << 16) |
                    (uint32_t{static_cast<uint8_t>(input[2])} << 8) |
                    uint32_t{static_cast<uint8_t>(input[3])};
  // The length counts the type byte, so zero can never be valid.
  if (length == 0) {
    return absl::InvalidArgumentError("frame length 0");
  }
  size_t payload_size = length - 1;
  // Decided from the header alone: an oversized frame is refused before a
  // single payload byte is buffered.
  if (payload_size > std::min(max_payload, kAbsoluteMaxPayload)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "frame payload of ", payload_size, " bytes exceeds the ",
        std::min(max_payload, kAbsoluteMaxPayload), "-byte limit"));
  }
  size_t total = 4 + size_t{length};
  if (input.size() < total) return 0;
  out->type = static_cast<uint8_t>(input[4]);
  out->payload.assign(input.data() + kFrameHeaderSize, payload_size);
  return total;
}

std::string EncodeFrame(FrameType type, absl::string_view payload) {
  Writer w;
  w.U32(static_cast<uint32_t>(payload.size() + 1));
  w.U8(static_cast<uint8_t>(type));
  w.Raw(payload);
  return w.Take();
}

std::string EncodeHello(const HelloMessage& m) {
  Writer w;
  w.Raw(kHelloMagic);
  w.U16(m.version);
  w.Str(m.token);
  w.Str(m.client_name);
  return Framed(FrameType::kHello, w);
}

absl::StatusOr<HelloMessage> DecodeHello(absl::string_view payload) {
  Reader r(payload);
  HelloMessage m;
  if (r.Raw(kHelloMagic.size()) != kHelloMagic) r.Fail("wrong magic");
  m.version = r.U16();
  m.token = r.Str();
  m.client_name = r.Str();
  absl::Status s = r.Finish("HELLO");
  if (!s.ok()) return s;
  return m;
}

std::string EncodeWelcome(const WelcomeMessage& m) {
  Writer w;
  w.U16(m.version);
  w.U64(m.client_id);
  w.U32(m.capabilities);
  w.U32(m.max_payload);
  w.Str(m.program);
  w.Str(m.python_version);
  return Framed(FrameType::kWelcome, w);
}

absl::StatusOr<WelcomeMessage> DecodeWelcome(absl::string_view payload) {
  Reader r(payload);
  WelcomeMessage m;
  m.version = r.U16();
  m.client_id = r.U64();
  m.capabilities = r.U32();
  m.max_payload = r.U32();
  m.program = r.Str();
  m.python_version = r.Str();
  absl::Status s = r.Finish("WELCOME");
  if (!s.ok()) return s;
  return m;
}

std::string EncodeRequest(const RequestMessage& m) {
  Writer w;
  w.U32(m.request_id);
  w.U8(static_cast<uint8_t>(m.kind));
  w.Str(m.text);
  return Framed(FrameType::kRequest, w);
}

absl::StatusOr<RequestMessage> DecodeRequest(absl::string_view payload) {
  Reader r(payload);
  RequestMessage m;
  m.request_id = r.U32();
  uint8_t kind = r.U8();
  // Range-checked before the cast: an enum holding an unlisted value would
  // slip through every switch below us.
  if (!IsKnownRequestKind(kind)) r.Fail(absl::StrCat("request kind ", kind));
  m.kind = static_cast<RequestKind>(kind);
  m.text = r.Str();
  absl::Status s = r.Finish("REQUEST");
  if (!s.ok()) return s;
  return m;
}

std::string EncodeInterrupt(const InterruptMessage& m) {
  Writer w;
  w.U32(m.request_id);
  return Framed(FrameType::kInterrupt, w);
}

absl::StatusOr<InterruptMessage> DecodeInterrupt(absl::string_view payload) {
  Reader r(payload);
  InterruptMessage m;
  m.request_id = r.U32();
  absl::Status s = r.Finish("INTERRUPT");
  if (!s.ok()) return s;
  return m;
}

std::string EncodeReply(const ReplyMessage& m) {
  Writer w;
  w.U32(m.request_id);
  w.U8(static_cast<uint8_t>(m.status));
  w.U32(static_cast<uint32_t>(m.exit_code));
  w.Str(m.output);
  w.Str(m.error);
  return Framed(FrameType::kReply, w);
}

absl::StatusOr<ReplyMessage> DecodeReply(absl::string_view payload) {
  Reader r(payload);
  ReplyMessage m;
  m.request_id = r.U32();
  uint8_t status = r.U8();
  if (!IsKnownReplyStatus(status)) r.Fail(absl::StrCat("status ", status));
  m.status = static_cast<ReplyStatus>(status);
  m.exit_code = static_cast<int32_t>(r.U32());
  m.output = r.Str();
  m.error = r.Str();
  absl::Status s = r.Finish("REPLY");
  if (!s.ok()) return s;
  return m;
}

std::string EncodeError(const ErrorMessage& m) {
  Writer w;
  w.U16(m.code);
  w.U8(m.fatal ? 1 : 0);
  w.Str(m.message);
  return Framed(FrameType::kError, w);
}

absl::StatusOr<ErrorMessage> DecodeError(absl::string_view payload) {
  Reader r(payload);
  ErrorMessage m;
  m.code = r.U16();
  uint8_t fatal = r.U8();
  if (fatal > 1) r.Fail("fatal flag not 0 or 1");
  m.fatal = fatal == 1;
  m.message = r.Str();
  absl::Status s = r.Finish("ERROR");
  if (!s.ok()) return s;
  return m;
}

void TruncateReplyToFit(size_t max_payload, ReplyMessage* m) {
  const size_t fixed = kReplyOverhead - kFrameHeaderSize;
  if (fixed + m->output.size() + m->error.size() <= max_payload) return;
  // Refused, not cut silently: a successful reply becomes an error with
  // exit code 5 (the `annex` command's kExitTooLong) and a note in the text.
  if (m->status == ReplyStatus::kOk) {
    m->status = ReplyStatus::kError;
    m->exit_code = 5;
  }
  const std::string note =
      absl::StrCat("\n[annex: output of ", m->output.size() + m->error.size(),
                   " bytes cut: a reply may have at most ", max_payload,
                   " bytes; write large results to a file]\n");
  const absl::string_view kNote = note;
  size_t budget = max_payload > fixed ? max_payload - fixed : 0;
  // Keep the traceback whole when we can: it explains a failure, the bulk
  // output rarely does.
  size_t error_keep = std::min(m->error.size(), budget / 2);
  if (m->output.size() + error_keep < budget) {
    error_keep = budget - m->output.size();
  }
  auto cut = [&kNote](std::string* s, size_t keep) {
    if (s->size() <= keep) return;
    if (keep >= kNote.size()) {
      s->resize(keep - kNote.size());
      s->append(kNote.data(), kNote.size());
    } else {
      s->resize(keep);
    }
  };
  cut(&m->error, error_keep);
  cut(&m->output, budget - m->error.size());
}

}  // namespace annex::console
