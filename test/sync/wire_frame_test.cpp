// The agent <-> backup wire codec: openings key a connection, frames
// round-trip sealed in both directions, the stream decoder copes with any
// split, and bad input (a wrong key, a frame of another connection, one
// replayed, reordered, dropped or sent back, truncation, bit flips,
// oversized or garbage frames, bad key files) is refused with
// Error(Corrupt) or a key-file error, never a crash or an unbounded
// allocation.
#include <boost/test/unit_test.hpp>

#include <sodium.h>
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
#include "test/sync/wire_test_support.hpp"

using namespace shmsession;
using namespace shmsession::sync::wire;
using namespace shmsession::sync::wire::detail;
using shmsession::test::code_of;
using shmsession::test::fixed_key;
using shmsession::test::fixed_nonce;
using shmsession::test::message_of;
using shmsession::test::open_pair;
using shmsession::test::raw_frame_length;
using shmsession::test::WirePair;

namespace {

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

std::string error_after(FrameCodec& codec, const std::string& bytes) {
  codec.feed(bytes);
  std::vector<Frame> got;
  return message_of([&] { drain(codec, got); });
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

// The bytes a client with fixed nonces sends on one connection to a server
// with a fixed nonce (so that every fresh server decodes them alike): its
// opening, then `frames`.
std::string client_stream(const std::vector<Frame>& frames, FrameLimits limits = {}) {
  WirePair pair = open_pair(fixed_key(1), fixed_key(1), limits, fixed_nonce(1), fixed_nonce(2));
  std::string stream = pair.client->opening();
  for (const Frame& frame : frames) stream += pair.client->encode(frame);
  return stream;
}

FrameCodec fixed_server(FrameLimits limits = {}) {
  return FrameCodec(fixed_key(1), Side::Server, limits, fixed_nonce(2));
}

// Seals `plain` (type, flags, sequence, payload as wire_format.md lays them
// out) as the client's frame number `index` of a connection between nonces
// (1) and (2) under fixed_key(1), with the derivation wire_format.md
// documents, written here from the document and not from the codec.
std::string seal_as_documented(const std::string& plain, std::uint64_t index) {
  const Key psk = fixed_key(1);
  const ConnectionNonce client = fixed_nonce(1), server = fixed_nonce(2);
  std::string input = "shmsession wire 2 client to server";
  input.append(reinterpret_cast<const char*>(client.data()), client.size());
  input.append(reinterpret_cast<const char*>(server.data()), server.size());
  unsigned char key[32];
  crypto_generichash(key, sizeof key, reinterpret_cast<const unsigned char*>(input.data()), input.size(), psk.data(),
                     32);
  unsigned char nonce[12] = {};
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<unsigned char>(index >> (8 * i));
  std::string out;
  diff::detail::ByteWriter(out).u32(static_cast<std::uint32_t>(plain.size() + 16));
  out.resize(4 + plain.size() + 16);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data()) + 4, &written,
                                            reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                            reinterpret_cast<const unsigned char*>(out.data()), 4, nullptr, nonce, key);
  return out;
}

std::string plain_frame(std::uint8_t type, std::uint16_t flags, std::uint64_t seq, const std::string& payload) {
  std::string out;
  diff::detail::ByteWriter writer(out);
  writer.u8(type);
  writer.u16(flags);
  writer.u64(seq);
  writer.bytes(payload);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_frame_type_round_trips_both_ways) {
  WirePair pair = open_pair(fixed_key(1), fixed_key(1));
  const std::vector<Frame> frames = sample_frames();
  for (auto [from, to] :
       {std::pair{pair.client.get(), pair.server.get()}, std::pair{pair.server.get(), pair.client.get()}}) {
    for (const Frame& frame : frames) {
      const std::string bytes = from->encode(frame);
      BOOST_TEST(bytes.size() == kFrameOverheadBytes + frame.payload.size());
      // Encrypted: the payload is not in the bytes.
      if (frame.payload.size() >= 8) BOOST_TEST(bytes.find(frame.payload) == std::string::npos);
      to->feed(bytes);
    }
    std::vector<Frame> got;
    drain(*to, got);
    BOOST_TEST(got.size() == frames.size());
    for (std::size_t i = 0; i < std::min(got.size(), frames.size()); ++i)
      BOOST_TEST((got[i] == frames[i]), "frame " << i << " (" << frame_type_name(frames[i].type) << ")");
    BOOST_TEST(to->buffered_bytes() == 0u);
    BOOST_TEST(to->frames_decoded() == frames.size());
  }
  BOOST_TEST(pair.client->opening().size() == kOpeningBytes);
  BOOST_TEST((pair.server->key_in_use() == key_id(fixed_key(1))));
  // Every connection is keyed anew: the same frame seals to other bytes.
  WirePair other = open_pair(fixed_key(1), fixed_key(1));
  BOOST_TEST(other.client->encode(frames[0]) != open_pair(fixed_key(1), fixed_key(1)).client->encode(frames[0]));
}

BOOST_AUTO_TEST_CASE(a_frame_sealed_as_documented_opens_and_its_inside_is_checked) {
  const std::string opening = client_stream({});
  FrameCodec server = fixed_server();
  server.feed(opening + seal_as_documented(plain_frame(12, 0, 77, ""), 0));
  const std::optional<Frame> frame = server.next();
  BOOST_REQUIRE(frame.has_value());
  BOOST_TEST((*frame == make_heartbeat(77)));
  FrameCodec typeless = fixed_server();
  BOOST_TEST(
      error_after(typeless, opening + seal_as_documented(plain_frame(13, 0, 1, ""), 0)).find("unknown frame type 13") !=
      std::string::npos);
  FrameCodec flagged = fixed_server();
  BOOST_TEST(error_after(flagged, opening + seal_as_documented(plain_frame(12, 1, 1, ""), 0)).find("unknown flags") !=
             std::string::npos);
  FrameCodec second = fixed_server();  // sealed with the nonce of frame 2, read as frame 1
  BOOST_TEST(error_after(second, opening + seal_as_documented(plain_frame(12, 0, 1, ""), 1)).find("cannot open it") !=
             std::string::npos);
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
  const std::vector<Frame> frames = {sample_frames()[0], sample_frames()[2]};
  const std::string stream = client_stream(frames);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    FrameCodec receiver = fixed_server();
    std::vector<Frame> got;
    receiver.feed(std::string_view(stream).substr(0, split));
    drain(receiver, got);
    receiver.feed(std::string_view(stream).substr(split));
    drain(receiver, got);
    BOOST_TEST((got == frames), "split at byte " << split);
  }
  FrameCodec bytewise = fixed_server();
  std::vector<Frame> got;
  for (char c : stream) {
    bytewise.feed(std::string_view(&c, 1));
    drain(bytewise, got);
  }
  BOOST_TEST((got == frames));
}

BOOST_AUTO_TEST_CASE(every_truncation_yields_no_frame) {
  const std::string bytes = client_stream({sample_frames()[2]});
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    FrameCodec receiver = fixed_server();
    receiver.feed(std::string_view(bytes).substr(0, size));
    BOOST_TEST(!receiver.next().has_value(), "prefix of " << size << " bytes");
    BOOST_TEST(receiver.buffered_bytes() == (size < kOpeningBytes ? size : size - kOpeningBytes));
  }
}

// The client's key is not in the server's ring: the server says so in its
// answer (no frame can be sealed), and both ends name the key files.
BOOST_AUTO_TEST_CASE(a_wrong_key_is_refused_at_the_opening_on_both_ends) {
  FrameCodec client(fixed_key(1), Side::Client);
  FrameCodec server(fixed_key(2), Side::Server);
  server.feed(client.opening());
  const std::string at_server = message_of([&] { server.next(); });
  BOOST_TEST(at_server.find("is not in this key file: the two hosts' key files differ") != std::string::npos,
             at_server);
  BOOST_TEST(at_server.find(key_id_text(key_id(fixed_key(1)))) != std::string::npos, at_server);
  BOOST_TEST(!server.keyed());
  const std::string answer = server.take_answer();
  BOOST_TEST(answer.size() == kOpeningBytes);
  client.feed(answer);
  const std::string at_client = message_of([&] { client.next(); });
  BOOST_TEST(at_client.find("the backup has no key with this end's key id") != std::string::npos, at_client);
  BOOST_TEST((code_of([&] { client.encode(make_ack(1)); }) == Errc::InvalidArgument));
  // Dead for good: even a right opening is refused afterwards.
  server.feed(FrameCodec(fixed_key(2), Side::Client).opening());
  BOOST_TEST((code_of([&] { server.next(); }) == Errc::Corrupt));
}

// A ring of two keys (a rotation): clients of either key connect, and the
// server keys each connection with the client's key.
BOOST_AUTO_TEST_CASE(a_server_accepts_every_key_of_its_ring) {
  const KeyRing ring(std::vector<Key>{fixed_key(1), fixed_key(2)});
  for (std::uint8_t fill : {1, 2}) {
    WirePair pair = open_pair(fixed_key(fill), ring);
    BOOST_TEST((pair.server->key_in_use() == key_id(fixed_key(fill))));
    pair.server->feed(pair.client->encode(make_heartbeat(fill)));
    const std::optional<Frame> frame = pair.server->next();
    BOOST_TEST((frame && *frame == make_heartbeat(fill)));
  }
  BOOST_TEST((code_of([] { KeyRing(std::vector<Key>{}); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([] { KeyRing(std::vector<Key>{fixed_key(1), fixed_key(1)}); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([] { KeyRing(std::vector<Key>(kMaxRingKeys + 1, fixed_key(1))); }) == Errc::InvalidArgument));
}

// Replay: a recorded connection played again to the server, a frame fed
// twice, frames swapped, a frame left out, a frame sent back to its
// sender. Each fails to open, and the codec refuses everything after.
BOOST_AUTO_TEST_CASE(replayed_reordered_dropped_and_reflected_frames_are_refused) {
  const std::string kRefused = "cannot open it: wrong key, or a tampered, replayed, reordered or dropped frame";
  {
    WirePair recorded = open_pair(fixed_key(1), fixed_key(1));
    std::string stream = recorded.client->opening();
    stream += recorded.client->encode(make_hello(Hello{kProtocolVersion, {}, 5}));
    stream += recorded.client->encode(make_heartbeat(5));
    FrameCodec fresh(fixed_key(1), Side::Server);  // a new connection: a new server nonce
    const std::string message = error_after(fresh, stream);
    BOOST_TEST(message.find("wire frame #1: " + kRefused) != std::string::npos, message);
  }
  WirePair pair = open_pair(fixed_key(1), fixed_key(1));
  const std::string a = pair.client->encode(make_heartbeat(1));
  const std::string b = pair.client->encode(make_heartbeat(2));
  const std::string c = pair.client->encode(make_heartbeat(3));
  const std::string back = pair.server->encode(make_ack(1));
  {
    WirePair twice = open_pair(fixed_key(1), fixed_key(1), {}, fixed_nonce(5), fixed_nonce(6));
    const std::string first = twice.client->encode(make_heartbeat(1));
    twice.server->feed(first);
    BOOST_TEST(twice.server->next().has_value());
    BOOST_TEST(error_after(*twice.server, first).find("wire frame #2: " + kRefused) != std::string::npos);
  }
  {
    WirePair swapped = open_pair(fixed_key(1), fixed_key(1));
    const std::string first = swapped.client->encode(make_heartbeat(1));
    const std::string second = swapped.client->encode(make_heartbeat(2));
    BOOST_TEST(error_after(*swapped.server, second + first).find("wire frame #1: " + kRefused) != std::string::npos);
  }
  {
    WirePair dropped = open_pair(fixed_key(1), fixed_key(1));
    dropped.client->encode(make_heartbeat(1));  // sealed, never delivered
    const std::string second = dropped.client->encode(make_heartbeat(2));
    BOOST_TEST(error_after(*dropped.server, second).find(kRefused) != std::string::npos);
  }
  {
    WirePair reflected = open_pair(fixed_key(1), fixed_key(1));
    const std::string from_server = reflected.server->encode(make_ack(1));
    BOOST_TEST(error_after(*reflected.server, from_server).find(kRefused) != std::string::npos);
    const std::string from_client = reflected.client->encode(make_heartbeat(1));
    BOOST_TEST(error_after(*reflected.client, from_client).find(kRefused) != std::string::npos);
  }
  // In order, the same frames open.
  pair.server->feed(a + b + c);
  std::vector<Frame> got;
  drain(*pair.server, got);
  BOOST_TEST(got.size() == 3u);
  pair.client->feed(back);
  BOOST_TEST(pair.client->next().has_value());
}

BOOST_AUTO_TEST_CASE(a_bit_flip_anywhere_is_corrupt) {
  const FrameLimits limits{4096, 4096};
  const std::string bytes = client_stream({sample_frames()[2]}, limits);
  // The stream goes on after the damaged frame, so a length flipped upwards
  // is completed by later bytes and then fails to open (or the cap).
  const std::string more(kFrameOverheadBytes + limits.max_payload_bytes, '\0');
  for (std::size_t bit = 0; bit < 8 * bytes.size(); ++bit) {
    std::string damaged = bytes;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    FrameCodec receiver = fixed_server(limits);
    receiver.feed(damaged + more);
    std::vector<Frame> got;
    BOOST_TEST((code_of([&] { drain(receiver, got); }) == Errc::Corrupt), "bit " << bit);
    BOOST_TEST(got.empty(), "bit " << bit);
  }
}

BOOST_AUTO_TEST_CASE(opening_checks_name_the_field) {
  const std::string good = FrameCodec(fixed_key(1), Side::Client, {}, fixed_nonce(1)).opening();
  const auto message_for = [](const std::string& bytes, Side side = Side::Server) {
    FrameCodec receiver(fixed_key(1), side);
    receiver.feed(bytes);
    return message_of([&] { receiver.next(); });
  };
  std::string version = good;
  version[4] = 3;
  BOOST_TEST(message_for(version).find("format version 3 is not supported") != std::string::npos);
  BOOST_TEST(message_for(good, Side::Client).find("side 1 where a server (2) was expected") != std::string::npos);
  std::string status = good;
  status[6] = 1;
  BOOST_TEST(message_for(status).find("status must be 0") != std::string::npos);
  std::string reserved = good;
  reserved[7] = 1;
  BOOST_TEST(message_for(reserved).find("reserved byte") != std::string::npos);
  // A peer of the format before encryption sends a frame first: "SSWF".
  BOOST_TEST(message_for(std::string("SSWF\x01\x01", 6)).find("speaks wire format 1") != std::string::npos);
  BOOST_TEST(message_for("GET / HTTP/1.1\r\nHost: backup\r\n\r\n").find("bad magic") != std::string::npos);
  // The server answers for another key than the client's.
  FrameCodec client(fixed_key(1), Side::Client);
  FrameCodec other_server(fixed_key(2), Side::Server);
  other_server.feed(FrameCodec(fixed_key(2), Side::Client).opening());
  BOOST_REQUIRE(!other_server.next().has_value());
  client.feed(other_server.take_answer());
  BOOST_TEST(message_of([&] { client.next(); }).find("the server answered for key") != std::string::npos);
  BOOST_TEST((code_of([] { FrameCodec(fixed_key(1), Side::Server).opening(); }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(oversized_payload_is_refused_from_the_length_alone) {
  const FrameLimits limits{1024, 256};
  WirePair pair = open_pair(fixed_key(1), fixed_key(1), limits);
  // Before any frame has opened the lower first-frame cap applies.
  WirePair fresh = open_pair(fixed_key(1), fixed_key(1), limits);
  fresh.server->feed(raw_frame_length(257));
  BOOST_TEST(message_of([&] { fresh.server->next(); }).find("exceeds the limit of 256 for a first frame") !=
             std::string::npos);

  pair.server->feed(pair.client->encode(make_heartbeat(1)));
  BOOST_TEST(pair.server->next().has_value());
  pair.server->feed(pair.client->encode(Frame{FrameType::Delta, 2, std::string(1024, 'd')}));  // at the cap
  BOOST_TEST(pair.server->next().has_value());
  {
    shmsession::test::AllocationProbe probe;
    std::string huge;
    diff::detail::ByteWriter(huge).u32(0xffffffffu);
    pair.server->feed(huge);
    const std::string message = message_of([&] { pair.server->next(); });
    BOOST_TEST(message.find("exceeds the limit of 1024") != std::string::npos, message);
    BOOST_TEST(probe.largest() < std::size_t{1} << 12, "largest allocation " << probe.largest());
  }
  WirePair short_one = open_pair(fixed_key(1), fixed_key(1), limits);
  std::string tiny;
  diff::detail::ByteWriter(tiny).u32(5);
  short_one.server->feed(tiny);
  BOOST_TEST(message_of([&] { short_one.server->next(); }).find("shorter than a sealed frame") != std::string::npos);
  BOOST_TEST((code_of([&] {
                pair.client->encode(Frame{FrameType::Delta, 3, std::string(1025, 'd')});
              }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { pair.client->encode(Frame{static_cast<FrameType>(0), 3, {}}); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([] {
                FrameCodec(fixed_key(1), Side::Client, FrameLimits{std::size_t{1} << 32, 256});
              }) == Errc::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(garbage_bytes_are_corrupt) {
  std::mt19937 random(12345);
  const std::string opening = client_stream({});
  for (int round = 0; round < 100; ++round) {
    std::string garbage(kOpeningBytes + random() % 200, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    FrameCodec receiver(fixed_key(1), Side::Server);
    receiver.feed(garbage);
    BOOST_TEST((code_of([&] { receiver.next(); }) == Errc::Corrupt), "round " << round);
    // Garbage after a good opening: a frame that does not open, or a length over the cap.
    std::string after(kFrameOverheadBytes + random() % 200, '\0');
    for (char& c : after) c = static_cast<char>(random());
    FrameCodec keyed = fixed_server();
    keyed.feed(opening + after + std::string(5000, '\0'));
    BOOST_TEST((code_of([&] {
                  std::vector<Frame> got;
                  drain(keyed, got);
                }) == Errc::Corrupt),
               "round " << round);
  }
}

BOOST_AUTO_TEST_CASE(key_files_are_checked) {
  const TempDir dir;
  const Key key = fixed_key(0x10);
  const Key second = fixed_key(0x20);
  auto hex_of = [](const Key& k) {
    std::string hex;
    for (std::size_t i = 0; i < kKeyBytes; ++i)
      hex += "0123456789abcdef"[k.data()[i] >> 4], hex += "0123456789abcdef"[k.data()[i] & 15];
    return hex;
  };
  const std::string raw(reinterpret_cast<const char*>(key.data()), kKeyBytes);
  const std::string hex = hex_of(key);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  BOOST_TEST((load_key_file(dir.write("raw", raw, 0600)).sending() == key));
  BOOST_TEST((load_key_file(dir.write("hex", hex, 0600)).sending() == key));
  BOOST_TEST((load_key_file(dir.write("hex_nl", upper + "\n", 0400)).sending() == key));
  BOOST_TEST(!(load_key_file(dir.write("other", hex.substr(2) + "ff", 0600)).sending() == key));
  // A ring: the first key is the one a client sends with; all are accepted.
  const KeyRing ring = load_key_file(dir.write("ring", hex_of(second) + "\n" + hex + "\n", 0600));
  BOOST_TEST(ring.size() == 2u);
  BOOST_TEST((ring.sending() == second));
  BOOST_TEST((ring.find(key_id(key)) != nullptr && *ring.find(key_id(key)) == key));
  BOOST_TEST(load_key_file(dir.write("ring_no_nl", hex_of(second) + "\n" + hex, 0600)).size() == 2u);

  BOOST_TEST((code_of([&] { load_key_file((dir.path / "missing").string()); }) == Errc::Io));
  std::string nine;
  for (int i = 0; i < 9; ++i) nine += hex_of(fixed_key(static_cast<std::uint8_t>(i))) + "\n";
  const std::string twice = hex + "\n" + hex + "\n";  // NOLINT(performance-inefficient-string-concatenation)
  for (const std::string& bad : {raw.substr(1), raw + "x", hex.substr(1), hex + "\n\n", hex.substr(2) + "zz",
                                 std::string(), std::string(1000, 'a'), twice, nine, hex + "\nnot a key\n"})
    BOOST_TEST((code_of([&] { load_key_file(dir.write("bad", bad, 0600)); }) == Errc::InvalidArgument),
               "contents of " << bad.size() << " bytes");
  BOOST_TEST(message_of([&] { load_key_file(dir.write("bad", hex + "\nnot a key\n", 0600)); }).find("line 2") !=
             std::string::npos);
  BOOST_TEST(message_of([&] { load_key_file(dir.write("bad", twice, 0600)); }).find("listed twice") !=
             std::string::npos);
  const std::string open_file = dir.write("open", hex, 0644);
  BOOST_TEST((code_of([&] { load_key_file(open_file); }) == Errc::InvalidArgument));
  BOOST_TEST(message_of([&] { load_key_file(open_file); }).find("mode 0644") != std::string::npos);
  BOOST_TEST((code_of([&] { load_key_file(dir.write("group", hex, 0640)); }) == Errc::InvalidArgument));
  BOOST_TEST((code_of([&] { load_key_file(dir.path.string()); }) == Errc::InvalidArgument));
  BOOST_TEST(message_of([&] { load_key_file(open_file); }).find(hex) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(loaded_and_generated_keys_key_a_connection) {
  const TempDir dir;
  const Key generated = generate_key();
  BOOST_TEST(!(generated == generate_key()));
  BOOST_TEST(key_id_text(key_id(generated)).size() == 16u);
  const std::string raw(reinterpret_cast<const char*>(generated.data()), kKeyBytes);
  WirePair pair = open_pair(generated, load_key_file(dir.write("key", raw, 0600)));
  pair.client->feed(pair.server->encode(make_ack(9)));
  const std::optional<Frame> frame = pair.client->next();
  BOOST_TEST((frame && parse_ack(*frame) == 9u));
}
