#include "sync/wire/detail/frame.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "diff/detail/byte_io.hpp"
#include "sync/detail/foreign_errors.hpp"
#include "sync/wire/detail/sodium.hpp"

namespace shmsession::sync::wire::detail {

static_assert(kFrameTagBytes == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(kKeyBytes == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);

namespace {

using diff::detail::ByteReader;
using diff::detail::ByteWriter;

bool is_known_type(std::uint8_t type) noexcept { return type >= kFirstFrameType && type <= kLastFrameType; }

std::string hex(std::uint64_t value, int digits) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%0*llx", digits, static_cast<unsigned long long>(value));
  return text;
}

const char* side_name(Side side) { return side == Side::Client ? "client" : "server"; }

// The frame nonce: the count of frames before it in its direction.
std::array<unsigned char, 12> frame_nonce(std::uint64_t frames) noexcept {
  std::array<unsigned char, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[static_cast<std::size_t>(i)] = static_cast<unsigned char>(frames >> (8 * i));
  return nonce;
}

std::string opening_bytes(Side side, std::uint8_t status, const KeyId& id, const ConnectionNonce& nonce) {
  std::string out;
  out.reserve(kOpeningBytes);
  ByteWriter writer(out);
  writer.u32(kOpeningMagic);
  writer.u8(kFrameFormatVersion);
  writer.u8(static_cast<std::uint8_t>(side));
  writer.u8(status);
  writer.u8(0);
  writer.bytes(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
  writer.bytes(std::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
  return out;
}

// The sealed payload can be at most this long for the u32 length field.
constexpr std::size_t kMaxEncodablePayload =
    std::numeric_limits<std::uint32_t>::max() - kSealedHeaderBytes - kFrameTagBytes;

}  // namespace

FrameCodec::FrameCodec(const KeyRing& keys, Side side, FrameLimits limits, std::optional<ConnectionNonce> nonce)
    : keys_(keys), side_(side), limits_(limits) {
  if (limits_.max_payload_bytes > kMaxEncodablePayload)
    throw Error(Errc::InvalidArgument, "wire frame: max_payload_bytes " + std::to_string(limits_.max_payload_bytes) +
                                           " exceeds what the u32 length field carries");
  detail::ensure_sodium();
  if (nonce)
    nonce_ = *nonce;
  else
    randombytes_buf(nonce_.data(), nonce_.size());
  if (side_ == Side::Client) key_in_use_ = keys_.sending_id();
}

FrameCodec::~FrameCodec() {
  sodium_memzero(send_.key.data(), send_.key.size());
  sodium_memzero(receive_.key.data(), receive_.key.size());
}

std::string FrameCodec::opening() const {
  if (side_ != Side::Client) throw Error(Errc::InvalidArgument, "wire: a server answers, it does not open");
  return opening_bytes(Side::Client, 0, keys_.sending_id(), nonce_);
}

std::string FrameCodec::take_answer() { return std::exchange(answer_, {}); }

// Each direction's key: BLAKE2b keyed with the pre-shared key, over a
// text naming the direction and both ends' nonces.
void FrameCodec::derive(const Key& psk, const ConnectionNonce& client, const ConnectionNonce& server) {
  auto direction_key = [&](const char* direction, std::array<std::uint8_t, kKeyBytes>& out) {
    std::string input = std::string("shmsession wire 2 ") + direction;
    input.append(reinterpret_cast<const char*>(client.data()), client.size());
    input.append(reinterpret_cast<const char*>(server.data()), server.size());
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                       psk.data(), kKeyBytes);
  };
  const bool client_side = side_ == Side::Client;
  direction_key("client to server", client_side ? send_.key : receive_.key);
  direction_key("server to client", client_side ? receive_.key : send_.key);
  keyed_ = true;
}

std::string FrameCodec::encode(const Frame& frame) {
  const auto type = static_cast<std::uint8_t>(frame.type);
  if (!keyed_) throw Error(Errc::InvalidArgument, "wire frame: cannot seal a frame before the openings are through");
  if (!is_known_type(type))
    throw Error(Errc::InvalidArgument, "wire frame: cannot encode unknown frame type " + std::to_string(type));
  if (frame.payload.size() > limits_.max_payload_bytes)
    throw Error(Errc::InvalidArgument, "wire frame: " + std::string(frame_type_name(frame.type)) + " payload of " +
                                           std::to_string(frame.payload.size()) + " bytes exceeds the limit of " +
                                           std::to_string(limits_.max_payload_bytes));
  const std::size_t plain_bytes = kSealedHeaderBytes + frame.payload.size();
  const std::size_t sealed_bytes = plain_bytes + kFrameTagBytes;
  std::string out;
  out.reserve(kFrameLengthBytes + sealed_bytes);
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(sealed_bytes));
  writer.u8(type);
  writer.u16(0);
  writer.u64(frame.seq);
  writer.bytes(frame.payload);
  out.resize(kFrameLengthBytes + sealed_bytes);
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  const std::array<unsigned char, 12> nonce = frame_nonce(send_.frames++);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(bytes + kFrameLengthBytes, &written, bytes + kFrameLengthBytes, plain_bytes,
                                            bytes, kFrameLengthBytes, nullptr, nonce.data(), send_.key.data());
  return out;
}

void FrameCodec::feed(std::string_view bytes) {
  if (failed_) return;  // the stream is dead; keep nothing more from it
  if (start_ > 0) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameCodec::next() {
  if (failed_) throw *failed_;
  try {
    if (!keyed_ && !read_opening()) return std::nullopt;
    return next_frame();
  } catch (const Error& e) {
    failed_ = e;
    buffer_.clear();
    start_ = 0;
    throw;
  }
}

std::size_t FrameCodec::payload_cap() const noexcept {
  return frames_decoded_ == 0 ? std::min(limits_.max_first_payload_bytes, limits_.max_payload_bytes)
                              : limits_.max_payload_bytes;
}

// The peer's opening; true once it is read and the connection keyed.
bool FrameCodec::read_opening() {
  const std::string_view pending = std::string_view(buffer_).substr(start_);
  if (pending.size() < 4) return false;
  const std::string context = std::string("wire opening from the ") + (side_ == Side::Client ? "server" : "client");
  ByteReader reader(pending.substr(0, std::min(pending.size(), kOpeningBytes)), context, sync::detail::throw_corrupt);
  const std::uint32_t magic = reader.u32("magic");
  if (magic == kFormat1Magic)
    reader.fail("the peer speaks wire format 1 (a shmsession build without encrypted frames): upgrade it");
  if (magic != kOpeningMagic) reader.fail("bad magic " + hex(magic, 8) + " (not a shmsession wire opening)");
  if (pending.size() < kOpeningBytes) return false;
  const std::uint8_t version = reader.u8("format version");
  if (version != kFrameFormatVersion)
    reader.fail("format version " + std::to_string(version) + " is not supported (this build speaks " +
                std::to_string(kFrameFormatVersion) + ")");
  const Side expected = side_ == Side::Client ? Side::Server : Side::Client;
  const std::uint8_t side = reader.u8("side");
  if (side != static_cast<std::uint8_t>(expected))
    reader.fail("side " + std::to_string(side) + " where a " + side_name(expected) + " (" +
                std::to_string(static_cast<int>(expected)) + ") was expected");
  const std::uint8_t status = reader.u8("status");
  if (reader.u8("reserved") != 0) reader.fail("reserved byte not zero");
  KeyId id{};
  std::memcpy(id.data(), reader.bytes(kKeyIdBytes, "key id").data(), kKeyIdBytes);
  ConnectionNonce peer{};
  std::memcpy(peer.data(), reader.bytes(kConnectionNonceBytes, "nonce").data(), kConnectionNonceBytes);
  start_ += kOpeningBytes;
  if (side_ == Side::Server) {
    if (status != 0) reader.fail("a client's status must be 0, got " + std::to_string(status));
    const Key* key = keys_.find(id);
    if (key == nullptr) {
      answer_ = opening_bytes(Side::Server, kOpeningUnknownKey, id, nonce_);
      reader.fail("the client's key (id " + key_id_text(id) +
                  ") is not in this key file: the two hosts' key files differ");
    }
    key_in_use_ = id;
    answer_ = opening_bytes(Side::Server, kOpeningAccepted, id, nonce_);
    derive(*key, peer, nonce_);
    return true;
  }
  if (id != keys_.sending_id())
    reader.fail("the server answered for key " + key_id_text(id) + ", not this end's " +
                key_id_text(keys_.sending_id()));
  if (status == kOpeningUnknownKey)
    reader.fail("the backup has no key with this end's key id " + key_id_text(id) +
                ": the two hosts' key files differ (a wrong key)");
  if (status != kOpeningAccepted) reader.fail("unknown status " + std::to_string(status));
  derive(keys_.sending(), nonce_, peer);
  return true;
}

std::optional<Frame> FrameCodec::next_frame() {
  const std::string_view pending = std::string_view(buffer_).substr(start_);
  if (pending.size() < kFrameLengthBytes) return std::nullopt;
  const std::string context = "wire frame #" + std::to_string(frames_decoded_ + 1);
  ByteReader reader(pending.substr(0, kFrameLengthBytes), context, sync::detail::throw_corrupt);
  const std::uint32_t sealed_bytes = reader.u32("length");
  if (sealed_bytes < kSealedHeaderBytes + kFrameTagBytes)
    reader.fail("length " + std::to_string(sealed_bytes) + " is shorter than a sealed frame's " +
                std::to_string(kSealedHeaderBytes + kFrameTagBytes) + " bytes");
  const std::size_t payload_bytes = sealed_bytes - kSealedHeaderBytes - kFrameTagBytes;
  const std::size_t cap = payload_cap();
  if (payload_bytes > cap)
    reader.fail("payload length " + std::to_string(payload_bytes) + " exceeds the limit of " + std::to_string(cap) +
                (frames_decoded_ == 0 ? " for a first frame" : ""));
  if (pending.size() < kFrameLengthBytes + sealed_bytes) return std::nullopt;
  std::string plain(sealed_bytes - kFrameTagBytes, '\0');
  const auto* bytes = reinterpret_cast<const unsigned char*>(pending.data());
  const std::array<unsigned char, 12> nonce = frame_nonce(receive_.frames);
  unsigned long long opened = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plain.data()), &opened, nullptr,
                                                bytes + kFrameLengthBytes, sealed_bytes, bytes, kFrameLengthBytes,
                                                nonce.data(), receive_.key.data()) != 0)
    reader.fail("cannot open it: wrong key, or a tampered, replayed, reordered or dropped frame");
  ++receive_.frames;
  start_ += kFrameLengthBytes + sealed_bytes;
  ByteReader inner(std::string_view(plain).substr(0, kSealedHeaderBytes), context, sync::detail::throw_corrupt);
  const std::uint8_t type = inner.u8("type");
  if (!is_known_type(type)) inner.fail("unknown frame type " + std::to_string(type));
  const std::uint16_t flags = inner.u16("flags");
  if ((flags & ~kFrameKnownFlags) != 0) inner.fail("unknown flags " + hex(flags, 4));
  Frame frame{static_cast<FrameType>(type), inner.u64("sequence"), plain.substr(kSealedHeaderBytes)};
  ++frames_decoded_;
  return frame;
}

}  // namespace shmsession::sync::wire::detail
