// The agent <-> backup wire codec: frames round-trip, the stream decoder
// copes with any split, and bad input (wrong key, truncation, bit flips,
// oversized or garbage frames, bad key files) is refused with Error(Corrupt)
// or a key-file error, never a crash or an unbounded allocation.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <vector>

#include "diff/detail/byte_io.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/payloads.hpp"
#include "sync/wire/key.hpp"
#include "test/diff/allocation_probe.hpp"
#include "test/support/test_support.hpp"
#include "test/sync/raw_frame_header.hpp"

using shmsession::test::raw_frame_header;
using namespace shmsession;
using namespace shmsession::sync::wire;
using namespace shmsession::sync::wire::detail;
using shmsession::test::code_of;
using shmsession::test::message_of;

namespace {

Key fixed_key(std::uint8_t fill) {
  Key::Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(fill + i);
  return Key(bytes);
}

// Every frame type once, with payloads of several sizes.
std::vector<Frame> sample_frames() {
  StoreId store{};
  for (std::size_t i = 0; i < store.size(); ++i) store[i] = static_cast<std::uint8_t>(0xa0 + i);
  return {
      make_hello(Hello{kProtocolVersion, store, 42}),
      make_welcome(Welcome{store, 41}),
      Frame{FrameType::Delta, 42, std::string("SDLT\x01\x00 opaque delta bytes \xff\x00", 27)},
      Frame{FrameType::SnapshotBegin, 100, {}},
      Frame{FrameType::SnapshotSession, 100, std::string(3000, 's')},
      Frame{FrameType::SnapshotEnd, 100, {}},
      make_ack(42),
      make_resend_session("session-7"),
      make_error("checksum mismatch on session-7"),
      make_removal(43, "session-8"),
      make_restore_request(),
      make_heartbeat(44),
  };
}

// Every frame the codec yields until it needs more bytes; frames yielded
// before a throw are still appended to `out`.
void drain(FrameCodec& codec, std::vector<Frame>& out) {
  while (std::optional<Frame> frame = codec.next()) out.push_back(std::move(*frame));
}

struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("wire_frame_test_" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }

  std::string write(const std::string& name, const std::string& contents, mode_t mode) const {
    std::string file = (path / name).string();
    std::ofstream(file, std::ios::binary | std::ios::trunc) << contents;
    BOOST_REQUIRE(::chmod(file.c_str(), mode) == 0);
    return file;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_frame_type_round_trips) {
  const FrameCodec sender(fixed_key(1));
  FrameCodec receiver(fixed_key(1));
  const std::vector<Frame> frames = sample_frames();
  for (const Frame& frame : frames) {
    const std::string bytes = sender.encode(frame);
    BOOST_TEST(bytes.size() == kFrameHeaderBytes + frame.payload.size() + kFrameMacBytes);
    receiver.feed(bytes);
  }
  std::vector<Frame> got;
  drain(receiver, got);
  BOOST_TEST(got.size() == frames.size());
  for (std::size_t i = 0; i < std::min(got.size(), frames.size()); ++i)
    BOOST_TEST((got[i] == frames[i]), "frame " << i << " (" << frame_type_name(frames[i].type) << ")");
  BOOST_TEST(receiver.buffered_bytes() == 0u);
  BOOST_TEST(receiver.frames_decoded() == frames.size());
}

BOOST_AUTO_TEST_CASE(typed_payloads_round_trip) {
  const std::vector<Frame> frames = sample_frames();
  BOOST_TEST(parse_hello(frames[0]).next_seq == 42u);
  BOOST_TEST(parse_hello(frames[0]).store_id[15] == 0xafu);
  BOOST_TEST((parse_welcome(frames[1]) == Welcome{parse_hello(frames[0]).store_id, 41}));
  BOOST_TEST((parse_welcome(make_welcome(Welcome{})) == Welcome{}));
  // Epochs (protocol version 2) and the promoted flag round-trip.
  BOOST_TEST((parse_hello(make_hello(Hello{kProtocolVersion, {}, 7, 9})) == Hello{kProtocolVersion, {}, 7, 9}));
  const Welcome promoted{parse_hello(frames[0]).store_id, 41, (std::uint64_t{1} << 62) + 5, true};
  BOOST_TEST((parse_welcome(make_welcome(promoted)) == promoted));
  BOOST_TEST(parse_ack(frames[6]) == 42u);
  BOOST_TEST(parse_resend_session(frames[7]) == "session-7");
  BOOST_TEST(parse_error(frames[8]) == "checksum mismatch on session-7");
  BOOST_TEST(parse_error(make_error(std::string("two\nlines\x01", 10))) == "two?lines?");
  BOOST_TEST(make_error(std::string(5000, 'e')).payload.size() == kMaxErrorReasonBytes);
}

BOOST_AUTO_TEST_CASE(typed_payloads_refuse_bad_frames) {
  const Frame hello = make_hello(Hello{});
  Frame trailing = hello;
  trailing.payload += 'x';
  Frame short_hello = hello;
  short_hello.payload.pop_back();
  Frame seq_hello = hello;
  seq_hello.seq = 3;
  Frame ack_with_payload = make_ack(1);
  ack_with_payload.payload = "x";
  const Frame long_id{FrameType::ResendSession, 0, std::string(1, '\xc8') + '\x01' + std::string(200, 'i')};
  Frame epoch_zero = make_hello(Hello{kProtocolVersion, {}, 0, 0});
  for (const Frame& bad : {trailing, short_hello, seq_hello, make_hello(Hello{1, {}, 0}), epoch_zero})
    BOOST_TEST((code_of([&] { parse_hello(bad); }) == Errc::Corrupt));
  BOOST_TEST(message_of([&] {
               parse_hello(make_hello(Hello{1, {}, 0}));
             }).find("protocol version 1") != std::string::npos);
  BOOST_TEST(message_of([&] { parse_hello(epoch_zero); }).find("epoch 0") != std::string::npos);
  Frame welcome_flags = make_welcome(Welcome{});
  welcome_flags.payload.back() = '\x02';
  BOOST_TEST((code_of([&] { parse_welcome(welcome_flags); }) == Errc::Corrupt));
  BOOST_TEST(message_of([&] { parse_welcome(welcome_flags); }).find("unknown flags 2") != std::string::npos);
  BOOST_TEST((code_of([&] { parse_welcome(make_welcome(Welcome{{}, 0, 0, false})); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { parse_welcome(hello); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { parse_ack(ack_with_payload); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { parse_resend_session(long_id); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { parse_resend_session(Frame{FrameType::ResendSession, 0, {}}); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { parse_error(Frame{FrameType::Error, 0, std::string(2000, 'e')}); }) == Errc::Corrupt));
  BOOST_TEST((code_of([&] { make_resend_session(""); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { make_resend_session(std::string(129, 'i')); }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(any_split_of_a_stream_gives_the_same_frames) {
  const FrameCodec sender(fixed_key(1));
  const std::vector<Frame> frames = {sample_frames()[0], sample_frames()[2]};
  const std::string stream = sender.encode(frames[0]) + sender.encode(frames[1]);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    FrameCodec receiver(fixed_key(1));
    std::vector<Frame> got;
    receiver.feed(std::string_view(stream).substr(0, split));
    drain(receiver, got);
    receiver.feed(std::string_view(stream).substr(split));
    drain(receiver, got);
    BOOST_TEST((got == frames), "split at byte " << split);
  }
  FrameCodec bytewise(fixed_key(1));
  std::vector<Frame> got;
  for (char c : stream) {
    bytewise.feed(std::string_view(&c, 1));
    drain(bytewise, got);
  }
  BOOST_TEST((got == frames));
}

BOOST_AUTO_TEST_CASE(every_truncation_yields_no_frame) {
  const std::string bytes = FrameCodec(fixed_key(1)).encode(sample_frames()[2]);
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    FrameCodec receiver(fixed_key(1));
    receiver.feed(std::string_view(bytes).substr(0, size));
    BOOST_TEST(!receiver.next().has_value(), "prefix of " << size << " bytes");
    BOOST_TEST(receiver.buffered_bytes() == size);
  }
}

BOOST_AUTO_TEST_CASE(wrong_key_is_corrupt_naming_the_mac_and_final) {
  const FrameCodec sender(fixed_key(1));
  FrameCodec receiver(fixed_key(2));
  receiver.feed(sender.encode(sample_frames()[0]));
  const std::string message = message_of([&] { receiver.next(); });
  BOOST_TEST(message.find("MAC mismatch: wrong key or damaged frame") != std::string::npos, message);
  // The stream is dead: a valid frame afterwards is refused too.
  receiver.feed(FrameCodec(fixed_key(2)).encode(sample_frames()[0]));
  BOOST_TEST((code_of([&] { receiver.next(); }) == Errc::Corrupt));
}

BOOST_AUTO_TEST_CASE(a_bit_flip_anywhere_is_corrupt) {
  const FrameLimits limits{4096, 4096};
  const std::string bytes = FrameCodec(fixed_key(1), limits).encode(sample_frames()[2]);
  // The stream goes on after the damaged frame, so a length flipped upwards
  // is completed by later bytes and then fails its MAC (or the cap).
  const std::string more(kFrameHeaderBytes + limits.max_payload_bytes + kFrameMacBytes, '\0');
  for (std::size_t bit = 0; bit < 8 * bytes.size(); ++bit) {
    std::string damaged = bytes;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    FrameCodec receiver(fixed_key(1), limits);
    receiver.feed(damaged + more);
    std::vector<Frame> got;
    BOOST_TEST((code_of([&] { drain(receiver, got); }) == Errc::Corrupt), "bit " << bit);
    BOOST_TEST(got.empty(), "bit " << bit);
  }
}

BOOST_AUTO_TEST_CASE(header_checks_name_the_field) {
  const auto message_for = [](const std::string& header) {
    FrameCodec receiver(fixed_key(1));
    receiver.feed(header);
    return message_of([&] { receiver.next(); });
  };
  BOOST_TEST(message_for(raw_frame_header(FrameType::Ack, 0, 2)).find("format version 2") != std::string::npos);
  BOOST_TEST(message_for(raw_frame_header(static_cast<FrameType>(0), 0)).find("unknown frame type 0") !=
             std::string::npos);
  BOOST_TEST(message_for(raw_frame_header(static_cast<FrameType>(13), 0)).find("unknown frame type 13") !=
             std::string::npos);
  BOOST_TEST(message_for(raw_frame_header(FrameType::Ack, 0, kFrameFormatVersion, 1)).find("unknown flags") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(oversized_payload_is_refused_from_the_header_alone) {
  const FrameLimits limits{1024, 256};
  const FrameCodec sender(fixed_key(1), limits);
  FrameCodec receiver(fixed_key(1), limits);
  // Before any frame is authenticated the lower first-frame cap applies.
  FrameCodec fresh(fixed_key(1), limits);
  fresh.feed(raw_frame_header(FrameType::Hello, 257));
  BOOST_TEST(message_of([&] { fresh.next(); }).find("exceeds the limit of 256 for a first frame") != std::string::npos);

  receiver.feed(sender.encode(make_ack(1)));
  BOOST_TEST(receiver.next().has_value());
  receiver.feed(sender.encode(Frame{FrameType::Delta, 2, std::string(1024, 'd')}));  // at the cap: accepted
  BOOST_TEST(receiver.next().has_value());
  {
    shmsession::test::AllocationProbe probe;
    receiver.feed(raw_frame_header(FrameType::Delta, 0xffffffffu));
    const std::string message = message_of([&] { receiver.next(); });
    BOOST_TEST(message.find("payload length 4294967295 exceeds the limit of 1024") != std::string::npos, message);
    BOOST_TEST(probe.largest() < std::size_t{1} << 12, "largest allocation " << probe.largest());
  }
  BOOST_TEST((code_of([&] {
                sender.encode(Frame{FrameType::Delta, 3, std::string(1025, 'd')});
              }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { sender.encode(Frame{static_cast<FrameType>(0), 3, {}}); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([] {
                FrameCodec(fixed_key(1), FrameLimits{std::size_t{1} << 32, 256});
              }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(garbage_bytes_are_corrupt) {
  std::mt19937 random(12345);
  for (int round = 0; round < 100; ++round) {
    std::string garbage(kFrameHeaderBytes + random() % 200, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    FrameCodec receiver(fixed_key(1));
    receiver.feed(garbage);
    BOOST_TEST((code_of([&] { receiver.next(); }) == Errc::Corrupt), "round " << round);
  }
  FrameCodec receiver(fixed_key(1));
  receiver.feed("GET / HTTP/1.1\r\nHost: backup\r\n\r\n");
  BOOST_TEST(message_of([&] { receiver.next(); }).find("bad magic") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(key_files_are_checked) {
  const TempDir dir;
  const Key key = fixed_key(0x10);
  const std::string raw(reinterpret_cast<const char*>(key.data()), kKeyBytes);
  std::string hex;
  for (unsigned char c : raw) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  BOOST_TEST((load_key_file(dir.write("raw", raw, 0600)) == key));
  BOOST_TEST((load_key_file(dir.write("hex", hex, 0600)) == key));
  BOOST_TEST((load_key_file(dir.write("hex_nl", upper + "\n", 0400)) == key));
  BOOST_TEST(!(load_key_file(dir.write("other", hex.substr(2) + "ff", 0600)) == key));

  BOOST_TEST((code_of([&] { load_key_file((dir.path / "missing").string()); }) == Errc::Io));
  for (const std::string& bad : {raw.substr(1), raw + "x", hex.substr(1), hex + "\n\n", hex.substr(2) + "zz",
                                 std::string(), std::string(1000, 'a')})
    BOOST_TEST((code_of([&] { load_key_file(dir.write("bad", bad, 0600)); }) == Errc::InvalidArgument),
               "contents of " << bad.size() << " bytes");
  const std::string open_file = dir.write("open", hex, 0644);
  BOOST_TEST((code_of([&] { load_key_file(open_file); }) == Errc::InvalidArgument));
  BOOST_TEST(message_of([&] { load_key_file(open_file); }).find("mode 0644") != std::string::npos);
  BOOST_TEST((code_of([&] { load_key_file(dir.write("group", hex, 0640)); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { load_key_file(dir.path.string()); }) == Errc::InvalidArgument));
  BOOST_TEST(message_of([&] { load_key_file(open_file); }).find(hex) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(loaded_and_generated_keys_authenticate) {
  const TempDir dir;
  const Key generated = generate_key();
  BOOST_TEST(!(generated == generate_key()));
  const std::string raw(reinterpret_cast<const char*>(generated.data()), kKeyBytes);
  FrameCodec receiver(load_key_file(dir.write("key", raw, 0600)));
  receiver.feed(FrameCodec(generated).encode(make_ack(9)));
  const std::optional<Frame> frame = receiver.next();
  BOOST_TEST((frame && parse_ack(*frame) == 9u));
}
