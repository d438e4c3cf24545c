// libFuzzer target for the agent <-> backup wire codec: FrameCodec decoding
// an untrusted byte stream fed in chunks, the typed payload parsers and the
// session payload parser (parse_item_frame) on every frame that comes out,
// and (Link mode) the backup daemon's StandbyLink over a scratch standby
// store. Only shmsession::Error may escape the library; any other exception,
// a crash, a sanitizer report, an allocation over -malloc_limit_mb, or a
// broken oracle (trap) is a finding. Input layout: frame_fuzz_input.hpp.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diff/error.hpp"
#include "shm/change_feed.hpp"
#include "shm/error.hpp"
#include "shm/replica.hpp"
#include "shm/store.hpp"
#include "sync/backup/detail/replication_item.hpp"
#include "sync/backup/detail/standby_link.hpp"
#include "sync/wire/detail/frame.hpp"
#include "sync/wire/detail/payloads.hpp"
#include "test/fuzz/frame_fuzz_input.hpp"

namespace {

using namespace shmsession;
using namespace shmsession::sync::wire;
using namespace shmsession::sync::wire::detail;
using shmsession::fuzz::FrameMode;

// Each parser must accept only the canonical encoding: what parses must
// re-encode (without an error) to the same frame.
template <class Parse, class Make>
void check_canonical(const Frame& frame, Parse parse, Make make) {
  std::optional<decltype(parse(frame))> value;
  try {
    value = parse(frame);
  } catch (const Error&) {
    return;
  }
  if (make(*value) != frame) __builtin_trap();
}

// Session payloads are canonical (wire_format.md): an item a fresh decoder
// reads (its id in full, its idle timeout given) re-encodes, with the same
// type and seq, to the same frame; and what parses, a sender can make
// (make_item_frame does not refuse it).
void parse_item(const Frame& frame) {
  sync::detail::Outgoing item;
  try {
    item = sync::detail::parse_item_frame(frame);
  } catch (const Error&) {
    return;
  }
  if (item.seq != frame.seq) __builtin_trap();
  if ((item.kind == sync::detail::Outgoing::Kind::Removal) != (frame.type == FrameType::Removal)) __builtin_trap();
  std::optional<Frame> again;
  try {
    again = sync::detail::make_item_frame(item, frame.type, frame.seq);
  } catch (const Error&) {
    __builtin_trap();
  }
  if (*again != frame) __builtin_trap();
}

void parse_payloads(const Frame& frame) {
  check_canonical(frame, parse_hello, make_hello);
  check_canonical(frame, parse_welcome, make_welcome);
  check_canonical(frame, parse_ack, make_ack);
  check_canonical(frame, parse_resend_session, [](const std::string& id) { return make_resend_session(id); });
  check_canonical(frame, parse_removal, [&](const std::string& id) { return make_removal(frame.seq, id); });
  check_canonical(frame, parse_heartbeat, make_heartbeat);
  try {
    parse_restore_request(frame);
    if (make_restore_request() != frame) __builtin_trap();
  } catch (const Error&) {
  }
  try {
    const std::string reason = parse_error(frame);
    if (reason.size() != frame.payload.size() ||
        std::any_of(reason.begin(), reason.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
      __builtin_trap();
  } catch (const Error&) {
  }
  parse_item(frame);
}

// The client end that made an accepted opening: its nonce is the
// opening's, and the server's answer keys it.
std::unique_ptr<FrameCodec> mirror_client(std::string_view opening, FrameCodec& server) {
  ConnectionNonce nonce{};
  const std::string_view bytes = opening.substr(kOpeningBytes - kConnectionNonceBytes, kConnectionNonceBytes);
  std::copy(bytes.begin(), bytes.end(), nonce.begin());
  auto mirror = std::make_unique<FrameCodec>(fuzz::frame_fuzz_key(), Side::Client, fuzz::frame_fuzz_limits(), nonce);
  // An opening the server accepts has one encoding: the key's id and a nonce.
  if (mirror->opening() != opening) __builtin_trap();
  try {
    mirror->feed(server.take_answer());
    if (mirror->next() || !mirror->keyed()) __builtin_trap();
  } catch (const Error&) {
    __builtin_trap();  // the server accepted this client: its answer must key it
  }
  return mirror;
}

// Feeds `stream` in chunks to the fixed server; every frame returned must
// be exactly the bytes it was decoded from, as the client that made the
// opening seals it again (so the decoder cannot skip, reorder or misread).
void decode_stream(std::string_view stream, std::uint8_t chunking) {
  std::unique_ptr<FrameCodec> codec = fuzz::frame_fuzz_server(fuzz::frame_fuzz_limits());
  std::unique_ptr<FrameCodec> mirror;
  fuzz::ChunkSizes sizes(chunking);
  std::string reencoded;
  try {
    for (std::size_t pos = 0; pos < stream.size();) {
      const std::size_t size = std::min(sizes.next(stream.size() - pos), stream.size() - pos);
      codec->feed(stream.substr(pos, size));
      pos += size;
      for (;;) {
        std::optional<Frame> frame = codec->next();
        if (codec->keyed() && !mirror) {
          mirror = mirror_client(stream.substr(0, kOpeningBytes), *codec);
          reencoded = std::string(stream.substr(0, kOpeningBytes));
        }
        if (!frame) break;
        reencoded += mirror->encode(*frame);
        if (stream.substr(0, reencoded.size()) != reencoded) __builtin_trap();
        parse_payloads(*frame);
      }
    }
  } catch (const Error&) {
    return;
  }
  if (reencoded.size() + codec->buffered_bytes() != stream.size()) __builtin_trap();
}

struct Record {
  std::uint8_t type;
  std::uint64_t seq;
  std::string_view payload;
};

// The records of `payload` (a last one cut short keeps what is there).
std::vector<Record> read_records(std::string_view payload) {
  diff::detail::ByteReader reader(payload, "records");
  std::vector<Record> records;
  try {
    while (reader.remaining() >= fuzz::kRecordHeaderBytes) {
      Record record{reader.u8("type"), reader.u64("seq"), {}};
      const std::uint16_t size = reader.u16("size");
      record.payload = reader.bytes(std::min<std::size_t>(size, reader.remaining()), "payload");
      records.push_back(record);
    }
  } catch (const diff::CorruptInput&) {
  }
  return records;
}

// The bytes of a record's frame sealed by `codec`; nullopt for a frame the
// codec refuses to make (unknown type, payload over the cap).
std::optional<std::string> encode_record(FrameCodec& codec, const Record& record) {
  try {
    return codec.encode(Frame{static_cast<FrameType>(record.type), record.seq, std::string(record.payload)});
  } catch (const Error& e) {
    if (e.code() != Errc::InvalidArgument) __builtin_trap();
  }
  return std::nullopt;
}

// The fixed client's opening, then the records sealed by it.
std::string encode_records(std::string_view payload) {
  const std::unique_ptr<FrameCodec> client =
      fuzz::keyed_frame_fuzz_client(fuzz::frame_fuzz_limits(), fuzz::frame_fuzz_key());
  std::string stream = client->opening();
  for (const Record& record : read_records(payload))
    if (std::optional<std::string> bytes = encode_record(*client, record)) stream += *bytes;
  return stream;
}

// ---- Link mode --------------------------------------------------------

// The standby every Link input is fed to: one per process, emptied before
// each input, and made anew when an input raised its epoch (a Hello of a
// newer epoch is admitted and kept: later inputs of epoch 1 would all be
// refused). Its name is removed as soon as the segment is created (the
// mapping stays), and again after an input whose full resync put a new
// segment under it (scratch_standby_done), so no segment outlives the
// process. Sparse (reserve off), as are the resync drafts made from it.
std::string scratch_standby_name() { return "frame_fuzz_standby_" + std::to_string(::getpid()); }

Store make_scratch_standby() {
  const std::string name = scratch_standby_name();
  Store::remove(name);
  CreateOptions options;
  options.size_bytes = std::uint64_t{8} << 20;
  options.shards = 4;
  options.change_log_capacity = 256;
  options.reserve = false;
  Store created = Store::create(name, options);
  Store::remove(name);
  return created;
}

// (A static made by the first call: it is destroyed at exit before the
// store library's own statics, which its constructor made first.)
Store& scratch_standby() {
  static Store store = make_scratch_standby();
  if (Replica(store).failover_state().epoch != 1) store = make_scratch_standby();
  return store;
}

void scratch_standby_done() { Store::remove(scratch_standby_name()); }

// The standby applies deltas under diff/'s production caps (64 MiB values),
// which a small zstd patch may legitimately reach: items whose patches
// declare a larger result than the fuzz caps are not sent, so that
// -malloc_limit_mb keeps meaning "an allocation the input did not pay for".
constexpr std::uint64_t kMaxLinkResultBytes = std::uint64_t{1} << 20;

// `items`: the link's session payload decoder as it stands before the
// record; it reads the record's payload (so it stands after it).
bool within_fuzz_caps(const Record& record, sync::detail::ItemDecoder& items) {
  const auto type = static_cast<FrameType>(record.type);
  if (type != FrameType::Delta && type != FrameType::SnapshotSession) return true;
  try {
    const sync::detail::Outgoing item = items.item(Frame{type, record.seq, std::string(record.payload)});
    for (const diff::AttributeChange& change : item.delta.changes) {
      if (change.kind != diff::AttributeChange::Kind::Patch) continue;
      diff::detail::ByteReader reader(change.bytes, "patch");
      reader.u8("method");
      if (reader.varint("result size") > kMaxLinkResultBytes) return false;
    }
  } catch (const Error&) {
    // The link must refuse it: send it.
  } catch (const diff::CorruptInput&) {
    // A patch too short for its header: the link must refuse it too.
  }
  return true;
}

// What a frame may change on the standby: any session change moves its
// change log; the position is kept beside it.
struct StandbyDigest {
  std::uint64_t next_change_seq;
  ReplicaPosition position;
  bool operator==(const StandbyDigest&) const = default;
};

StandbyDigest digest(Store& standby) { return {ChangeFeed(standby).next_seq(), Replica(standby).position()}; }

// Checks one Output of the link and opens what it sends back (as the
// agent end of the connection: the link always answers under its keys)
// into `replies`.
void check_output(const sync::detail::StandbyLink::Output& out, FrameCodec& decoder, std::vector<Frame>& replies) {
  if (out.close == out.reason.empty()) __builtin_trap();
  if (std::any_of(out.reason.begin(), out.reason.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
    __builtin_trap();  // one log line, whatever the peer sent
  replies.clear();
  try {
    decoder.feed(out.bytes);
    while (std::optional<Frame> frame = decoder.next()) replies.push_back(std::move(*frame));
  } catch (const Error&) {
    __builtin_trap();
  }
  if (decoder.buffered_bytes() != 0) __builtin_trap();                   // whole frames only
  const bool peer_reported = out.reason.starts_with("peer reported: ");  // closes without answering
  if (out.close && !peer_reported) {
    if (replies.empty() || replies.back().type != FrameType::Error) __builtin_trap();
    if (parse_error(replies.back()) != out.reason.substr(0, kMaxErrorReasonBytes)) __builtin_trap();
  }
}

// Feeds the records to a StandbyLink over the scratch standby, each record
// in chunks. Oracles while every record so far was one whole frame (so one
// feed completes at most one frame):
//  - a frame that closes the link changes nothing on the standby, unless
//    the store itself refused the change ("cannot apply session ..."): a
//    refused whole copy of a new session is rolled back by removing it (the
//    log moves, the sessions do not), and one of a re-created session loses
//    the old incarnation, because Replica::apply replaces an
//    incarnation in two steps (reported with the bad-input tests);
//  - a new acknowledgement is never ahead of the position stored in the
//    segment (stored first, then acknowledged).
void run_link(std::string_view payload, std::uint8_t chunking) {
  struct Done {
    ~Done() { scratch_standby_done(); }
  } done;
  Store& standby = scratch_standby();
  standby.remove_all_sessions();
  Replica(standby).set_position(ReplicaPosition{});
  sync::detail::StandbyLink link(standby, fuzz::frame_fuzz_key(), fuzz::frame_fuzz_limits());
  // The agent's end: it seals the records and opens the replies. An Error
  // reason may be 1 KiB: more than the fuzz limits' first-frame cap.
  FrameCodec agent(fuzz::frame_fuzz_key(), Side::Client, FrameLimits{std::size_t{1} << 16, 4096});
  {
    const sync::detail::StandbyLink::Output opened = link.feed(agent.opening());
    if (opened.close || opened.bytes.size() != kOpeningBytes) __builtin_trap();
    agent.feed(opened.bytes);
    if (agent.next() || !agent.keyed()) __builtin_trap();
  }
  fuzz::ChunkSizes sizes(chunking);
  std::vector<Frame> replies;
  bool whole_frames = true;
  std::uint64_t acked = 0;
  sync::detail::ItemDecoder items;  // a mirror of the link's (its dictionary of session ids)
  for (const Record& record : read_records(payload)) {
    std::string bytes;
    if (record.type == fuzz::kRawRecordType) {
      bytes = record.payload;
      whole_frames = false;
    } else {
      sync::detail::ItemDecoder next = items;  // the link's, once it has read this record
      if (!within_fuzz_caps(record, next)) continue;
      std::optional<std::string> encoded = encode_record(agent, record);
      if (!encoded) continue;
      bytes = std::move(*encoded);
      items = std::move(next);
    }
    const StandbyDigest before = digest(standby);
    for (std::size_t pos = 0; pos < bytes.size();) {
      const std::size_t size = std::min(sizes.next(bytes.size() - pos), bytes.size() - pos);
      const sync::detail::StandbyLink::Output out = link.feed(std::string_view(bytes).substr(pos, size));
      pos += size;
      check_output(out, agent, replies);
      if (!whole_frames) continue;
      for (const Frame& reply : replies) {
        if (reply.type != FrameType::Ack || reply.seq <= acked) continue;
        const ReplicaPosition stored = Replica(standby).position();
        if (stored.primary_store_id != link.agent_store() || stored.applied_seq < reply.seq) __builtin_trap();
        acked = reply.seq;
      }
      if (out.close && !out.reason.starts_with("peer reported: ") && !out.reason.starts_with("cannot apply session ") &&
          !(digest(standby) == before))
        __builtin_trap();
    }
    if (link.closed()) return;
    while (link.restore_pending()) {
      sync::detail::StandbyLink::Output chunk;
      chunk.bytes = link.next_restore_chunk(4096);
      check_output(chunk, agent, replies);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < fuzz::kFramePrefixBytes) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + fuzz::kFramePrefixBytes,
                                 size - fuzz::kFramePrefixBytes);
  switch (static_cast<FrameMode>(data[0] % fuzz::kFrameModeCount)) {
    case FrameMode::Stream:
      decode_stream(payload, data[1]);
      break;
    case FrameMode::Records:
      decode_stream(encode_records(payload), data[1]);
      break;
    case FrameMode::Link:
      run_link(payload, data[1]);
      break;
  }
  return 0;
}
