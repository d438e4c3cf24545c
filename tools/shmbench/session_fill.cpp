#include "tools/shmbench/session_fill.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/shmbench/session_shape.hpp"

namespace shmsession::bench {

void fill_store(Store& store, std::uint64_t first, std::uint64_t last) {
  const CommitBatch batch = fill_batch();
  for (std::uint64_t s = first; s < last; ++s) {
    const std::string id = session_id(s);
    if (!store.create_session(id)) throw std::runtime_error("session " + id + " exists already");
    store.commit(id, batch);
  }
}

void load_redis(RedisConnection& redis, std::uint64_t first, std::uint64_t last) {
  const CommitBatch batch = fill_batch();
  static_assert(kShapeAttributes.size() == 3, "HSET key + 3 name/value pairs");
  std::array<const char*, 8> argv{};
  std::array<std::size_t, 8> lengths{};
  argv[0] = "HSET";
  lengths[0] = 4;
  for (std::size_t a = 0; a < batch.puts.size(); ++a) {
    argv[2 + 2 * a] = batch.puts[a].name.data();
    lengths[2 + 2 * a] = batch.puts[a].name.size();
    argv[3 + 2 * a] = batch.puts[a].value.data();
    lengths[3 + 2 * a] = batch.puts[a].value.size();
  }
  for (std::uint64_t s = first; s < last;) {
    const std::uint64_t end = std::min(last, s + kRedisPipelineDepth);
    std::vector<std::string> keys;
    keys.reserve(end - s);
    for (std::uint64_t k = s; k < end; ++k) {
      keys.push_back(session_id(k));
      argv[1] = keys.back().data();
      lengths[1] = keys.back().size();
      redis.append(static_cast<int>(argv.size()), argv.data(), lengths.data());
    }
    for (std::uint64_t k = s; k < end; ++k) redis.next_reply();
    s = end;
  }
}

}  // namespace shmsession::bench
