// Unit tests for the console wire protocol: framing and every message codec,
// including each way a hostile or broken peer can get the bytes wrong.
#include "monitor/console/protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace annex::console {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::string PayloadOf(const std::string& frame) {
  return frame.substr(kFrameHeaderSize);
}

TEST(ParseFrameTest, NeedsMoreForEmptyAndPartialHeader) {
  Frame f;
  for (size_t n = 0; n < 4; ++n) {
    absl::StatusOr<size_t> used =
        ParseFrame(std::string(n, '\0'), kDefaultMaxPayload, &f);
    ASSERT_TRUE(used.ok());
    EXPECT_EQ(*used, 0u);
  }
}

TEST(ParseFrameTest, ZeroLengthIsMalformed) {
  Frame f;
  absl::StatusOr<size_t> used =
      ParseFrame(Bytes({0, 0, 0, 0, 1}), kDefaultMaxPayload, &f);
  EXPECT_TRUE(absl::IsInvalidArgument(used.status()));
}

TEST(ParseFrameTest, OversizedIsRefusedFromHeaderAlone) {
  Frame f;
  // 1 MiB + 2 announced, only the header present.
  std::string header = Bytes({0x00, 0x10, 0x00, 0x02});
  EXPECT_TRUE(absl::IsResourceExhausted(
      ParseFrame(header, kDefaultMaxPayload, &f).status()));
  // Text protocols (an HTTP probe) announce absurd lengths.
  EXPECT_TRUE(absl::IsResourceExhausted(
      ParseFrame("GET / HTTP/1.1\r\n", kDefaultMaxPayload, &f).status()));
  EXPECT_TRUE(absl::IsResourceExhausted(
      ParseFrame(Bytes({0xff, 0xff, 0xff, 0xff}), kDefaultMaxPayload, &f)
          .status()));
}

TEST(ParseFrameTest, LimitIsInclusiveAndCappedByAbsoluteMax) {
  Frame f;
  std::string exact = EncodeFrame(FrameType::kRequest, std::string(10, 'a'));
  EXPECT_EQ(*ParseFrame(exact, 10, &f), exact.size());
  EXPECT_TRUE(absl::IsResourceExhausted(ParseFrame(exact, 9, &f).status()));
  std::string huge = Bytes({0x04, 0x00, 0x00, 0x02});  // 64 MiB + 1 payload
  EXPECT_TRUE(
      absl::IsResourceExhausted(ParseFrame(huge, ~size_t{0}, &f).status()));
}

TEST(ParseFrameTest, TruncatedPayloadNeedsMore) {
  std::string frame = EncodeFrame(FrameType::kRequest, "hello");
  Frame f;
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_EQ(*ParseFrame(frame.substr(0, n), kDefaultMaxPayload, &f), 0u) << n;
  }
  EXPECT_EQ(*ParseFrame(frame, kDefaultMaxPayload, &f), frame.size());
  EXPECT_EQ(f.type, static_cast<uint8_t>(FrameType::kRequest));
  EXPECT_EQ(f.payload, "hello");
}

TEST(ParseFrameTest, CutsBackToBackFramesOneAtATime) {
  std::string a = EncodeFrame(FrameType::kHello, "a");
  std::string b = EncodeFrame(FrameType::kError, "");
  std::string both = a + b;
  Frame f;
  size_t used = *ParseFrame(both, kDefaultMaxPayload, &f);
  EXPECT_EQ(used, a.size());
  EXPECT_EQ(f.payload, "a");
  EXPECT_EQ(*ParseFrame(both.substr(used), kDefaultMaxPayload, &f), b.size());
  EXPECT_EQ(f.payload, "");
}

TEST(ParseFrameTest, UnknownTypeIsStillAFrame) {
  Frame f;
  std::string frame = Bytes({0, 0, 0, 2, 0xee, 0x00});
  EXPECT_EQ(*ParseFrame(frame, kDefaultMaxPayload, &f), frame.size());
  EXPECT_EQ(f.type, 0xee);
  EXPECT_FALSE(IsKnownFrameType(f.type));
  EXPECT_FALSE(IsKnownFrameType(0));
  EXPECT_TRUE(IsKnownFrameType(static_cast<uint8_t>(FrameType::kError)));
}

TEST(MessageTest, HelloRoundTrip) {
  HelloMessage m;
  m.token = std::string("t\0k", 3);  // binary-safe
  m.client_name = "annex attach";
  absl::StatusOr<HelloMessage> back = DecodeHello(PayloadOf(EncodeHello(m)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->version, kProtocolVersion);
  EXPECT_EQ(back->token, m.token);
  EXPECT_EQ(back->client_name, m.client_name);
}

TEST(MessageTest, HelloWithWrongMagicIsRejected) {
  std::string payload = PayloadOf(EncodeHello(HelloMessage()));
  payload[0] = 'X';
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeHello(payload).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeHello("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeHello("AN").status()));
}

TEST(MessageTest, WelcomeRoundTrip) {
  WelcomeMessage m;
  m.client_id = 0x0102030405060708ull;
  m.capabilities = kCapExecTarget;
  m.max_payload = 12345;
  m.program = "app";
  m.python_version = "3.11.2";
  absl::StatusOr<WelcomeMessage> back =
      DecodeWelcome(PayloadOf(EncodeWelcome(m)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->client_id, m.client_id);
  EXPECT_EQ(back->capabilities, m.capabilities);
  EXPECT_EQ(back->max_payload, m.max_payload);
  EXPECT_EQ(back->program, m.program);
  EXPECT_EQ(back->python_version, m.python_version);
}

TEST(MessageTest, RequestRoundTripAndBadKind) {
  RequestMessage m;
  m.request_id = 0xdeadbeef;
  m.kind = RequestKind::kExecTarget;
  m.text = "print(1)";
  std::string payload = PayloadOf(EncodeRequest(m));
  absl::StatusOr<RequestMessage> back = DecodeRequest(payload);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->request_id, m.request_id);
  EXPECT_EQ(back->kind, m.kind);
  EXPECT_EQ(back->text, m.text);
  for (int bad : {0, 8, 255}) {
    payload[4] = static_cast<char>(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeRequest(payload).status()))
        << bad;
  }
}

TEST(MessageTest, EveryTruncationOfEveryMessageIsRejected) {
  RequestMessage req;
  req.text = "abc";
  ReplyMessage rep;
  rep.output = "out";
  rep.error = "err";
  ErrorMessage err;
  err.message = "bad";
  WelcomeMessage wel;
  wel.program = "p";
  HelloMessage hel;
  hel.client_name = "c";
  struct Case {
    std::string payload;
    absl::Status (*decode)(absl::string_view);
  };
  std::vector<Case> cases = {
      {PayloadOf(EncodeHello(hel)),
       [](absl::string_view p) { return DecodeHello(p).status(); }},
      {PayloadOf(EncodeWelcome(wel)),
       [](absl::string_view p) { return DecodeWelcome(p).status(); }},
      {PayloadOf(EncodeRequest(req)),
       [](absl::string_view p) { return DecodeRequest(p).status(); }},
      {PayloadOf(EncodeInterrupt(InterruptMessage())),
       [](absl::string_view p) { return DecodeInterrupt(p).status(); }},
      {PayloadOf(EncodeReply(rep)),
       [](absl::string_view p) { return DecodeReply(p).status(); }},
      {PayloadOf(EncodeError(err)),
       [](absl::string_view p) { return DecodeError(p).status(); }},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(c.decode(c.payload).ok());
    for (size_t n = 0; n < c.payload.size(); ++n) {
      EXPECT_TRUE(absl::IsInvalidArgument(c.decode(c.payload.substr(0, n))))
          << n;
    }
    // Trailing bytes are refused too: one valid encoding per message.
    EXPECT_TRUE(absl::IsInvalidArgument(c.decode(c.payload + "x")));
  }
}

TEST(MessageTest, LyingStringLengthIsRejectedWithoutAllocating) {
  // request_id, kind, then a string claiming 4 GiB - 1 bytes.
  std::string payload = Bytes({0, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 'a'});
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeRequest(payload).status()));
}

TEST(MessageTest, ReplyRoundTripAndBadStatus) {
  ReplyMessage m;
  m.request_id = 7;
  m.status = ReplyStatus::kError;
  m.exit_code = -3;
  m.output = "o";
  m.error = "Traceback";
  std::string payload = PayloadOf(EncodeReply(m));
  absl::StatusOr<ReplyMessage> back = DecodeReply(payload);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->status, m.status);
  EXPECT_EQ(back->exit_code, -3);
  EXPECT_EQ(back->output, "o");
  EXPECT_EQ(back->error, "Traceback");
  payload[4] = 9;
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeReply(payload).status()));
}

TEST(MessageTest, ErrorFatalFlagMustBeZeroOrOne) {
  ErrorMessage m;
  m.code = static_cast<uint16_t>(ErrorCode::kFrameTooLarge);
  m.fatal = true;
  m.message = "too big";
  std::string payload = PayloadOf(EncodeError(m));
  absl::StatusOr<ErrorMessage> back = DecodeError(payload);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->fatal);
  EXPECT_EQ(back->code, m.code);
  payload[2] = 2;
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeError(payload).status()));
}

TEST(MessageTest, InterruptIsExactlyFourBytes) {
  InterruptMessage m;
  m.request_id = 42;
  std::string payload = PayloadOf(EncodeInterrupt(m));
  EXPECT_EQ(payload.size(), 4u);
  EXPECT_EQ(DecodeInterrupt(payload)->request_id, 42u);
}

TEST(TruncateReplyTest, FitsLimitAndKeepsTraceback) {
  ReplyMessage m;
  m.output = std::string(10000, 'o');
  m.error = "Traceback: short\n";
  TruncateReplyToFit(1000, &m);
  EXPECT_LE(PayloadOf(EncodeReply(m)).size(), 1000u);
  EXPECT_EQ(m.error, "Traceback: short\n");
  EXPECT_NE(m.output.find("bytes cut"), std::string::npos);
}

TEST(TruncateReplyTest, ACutSuccessIsNoLongerASuccess) {
  ReplyMessage m;
  m.output = std::string(10000, 'o');
  TruncateReplyToFit(1000, &m);
  EXPECT_LE(PayloadOf(EncodeReply(m)).size(), 1000u);
  EXPECT_EQ(m.status, ReplyStatus::kError);
  EXPECT_EQ(m.exit_code, 5);  // cli.h kExitTooLong
  EXPECT_NE(m.output.find("output of 10000 bytes cut"), std::string::npos)
      << m.output;
}

TEST(TruncateReplyTest, BothHugeStillFits) {
  for (size_t limit :
       {size_t{0}, size_t{10}, size_t{40}, size_t{300}, size_t{4096}}) {
    ReplyMessage m;
    m.output = std::string(5000, 'o');
    m.error = std::string(5000, 'e');
    TruncateReplyToFit(limit, &m);
    EXPECT_LE(PayloadOf(EncodeReply(m)).size(),
              std::max(limit, kReplyOverhead - kFrameHeaderSize))
        << limit;
  }
}

TEST(TruncateReplyTest, NoOpWhenItFits) {
  ReplyMessage m;
  m.output = "small";
  TruncateReplyToFit(kDefaultMaxPayload, &m);
  EXPECT_EQ(m.output, "small");
}

}  // namespace
}  // namespace annex::console
