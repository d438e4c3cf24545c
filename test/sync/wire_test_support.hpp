// Helpers for tests of the agent <-> backup wire (wire_frame_test,
// standby_link_test, backup_server_test): fixed keys and nonces, a client
// and a server codec through their openings, and raw bytes the decoder
// must judge from the length alone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/test/unit_test.hpp>

#include "diff/detail/byte_io.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/wire_format.hpp"
#include "sync/wire/key.hpp"

namespace shmsession::test {

inline sync::wire::Key fixed_key(std::uint8_t fill) {
  sync::wire::Key::Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(fill + i);
  return sync::wire::Key(bytes);
}

inline sync::wire::detail::ConnectionNonce fixed_nonce(std::uint8_t fill) {
  sync::wire::detail::ConnectionNonce nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<std::uint8_t>(fill * 3 + i);
  return nonce;
}

// A client and a server codec of one connection, through their openings.
struct WirePair {
  std::unique_ptr<sync::wire::detail::FrameCodec> client;
  std::unique_ptr<sync::wire::detail::FrameCodec> server;
};

inline WirePair open_pair(const sync::wire::KeyRing& client_keys, const sync::wire::KeyRing& server_keys,
                          sync::wire::FrameLimits limits = {},
                          std::optional<sync::wire::detail::ConnectionNonce> client_nonce = std::nullopt,
                          std::optional<sync::wire::detail::ConnectionNonce> server_nonce = std::nullopt) {
  using sync::wire::detail::FrameCodec;
  using sync::wire::detail::Side;
  WirePair pair{std::make_unique<FrameCodec>(client_keys, Side::Client, limits, client_nonce),
                std::make_unique<FrameCodec>(server_keys, Side::Server, limits, server_nonce)};
  pair.server->feed(pair.client->opening());
  BOOST_REQUIRE(!pair.server->next().has_value());
  BOOST_REQUIRE(pair.server->keyed());
  pair.client->feed(pair.server->take_answer());
  BOOST_REQUIRE(!pair.client->next().has_value());
  BOOST_REQUIRE(pair.client->keyed());
  return pair;
}

// The 4 length bytes of a sealed frame carrying `payload_bytes`, nothing
// after them: the decoder checks the cap from the length alone.
inline std::string raw_frame_length(std::uint64_t payload_bytes) {
  std::string out;
  diff::detail::ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(payload_bytes + sync::wire::detail::kSealedHeaderBytes +
                                        sync::wire::detail::kFrameTagBytes));
  return out;
}

}  // namespace shmsession::test
