// AttributeOArchive: writes exactly the bytes of Boost's binary_oarchive
// (no_header | no_codecvt: the format attribute values are stored in, read
// back by binary_iarchive), appending to a std::string, and notes whether
// the value holds a type whose object graph is coarser than its bytes
// (graph::kGraphCoarserThanBytes).
//
// Why not binary_oarchive itself: each one builds a std::locale and writes
// every primitive through a virtual streambuf call; that was a third of an
// attribute's encoding time (1.4 KiB cart, ~2.5 us). The archive layer
// (basic_binary_oarchive: class ids, versions, tracking, names) is Boost's
// own, so the records are the same; only the primitives are written here,
// as basic_binary_oprimitive writes them (native bytes, sizes as
// std::size_t, the same array optimization). One shortcut past that layer:
// an object of an untracked class type whose class information this
// archive wrote already is serialized directly (save_class_object), as
// Boost's own serializer would after its bookkeeping, which writes nothing
// more for it.
//
// Usage: encode_value<T> (sync/attribute_codec.hpp). Polymorphic
// pointees must be exported with this header included before
// BOOST_CLASS_EXPORT, as for any archive (attribute_codec.hpp includes it).
//
// Thread safety: an archive belongs to one thread; any number may run at
// once (Boost's serializer registry is only read after static init).
#pragma once

#include <boost/archive/basic_archive.hpp>
#include <boost/archive/basic_binary_oarchive.hpp>
#include <boost/archive/detail/oserializer.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/config.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cwchar>
#include <string>
#include <type_traits>

#include "graph/object_graph.hpp"

namespace shmsession::sync {

class AttributeOArchive : public boost::archive::basic_binary_oarchive<AttributeOArchive> {
 public:
  // Appends to `out`, which must outlive the archive. Until finish() (or
  // the destructor) `out` also holds scratch space past what was written.
  explicit AttributeOArchive(std::string& out)
      : boost::archive::basic_binary_oarchive<AttributeOArchive>(boost::archive::no_header |
                                                                 boost::archive::no_codecvt),
        out_(out) {
    const std::size_t written = out_.size();
    out_.resize(std::max(out_.capacity(), written + kMinRoom + kSlack));
    out_.resize(out_.capacity());  // see grow
    pos_ = out_.data() + written;
    end_ = out_.data() + out_.size() - kSlack;
  }
  AttributeOArchive(const AttributeOArchive&) = delete;
  AttributeOArchive& operator=(const AttributeOArchive&) = delete;
  ~AttributeOArchive() { finish(); }

  // Cuts `out` to what was written. Idempotent.
  void finish() {
    const std::size_t written = static_cast<std::size_t>(pos_ - out_.data());
    out_.resize(written);
    pos_ = end_ = out_.data() + written;  // no slack: the next save grows
  }

  // Whether anything saved so far was of a type whose graph is coarser
  // than its bytes: then only a graph can tell whether two values differ.
  bool graph_coarser_than_bytes() const noexcept { return coarser_; }

  // As basic_binary_oprimitive: arrays of bitwise-serializable items are
  // written as one block.
  struct use_array_optimization {
    template <class T>
    struct apply : public boost::serialization::is_bitwise_serializable<T> {};
  };
  template <class ValueType>
  void save_array(const boost::serialization::array_wrapper<ValueType>& a, unsigned int) {
    save_binary(a.address(), a.count() * sizeof(ValueType));
  }
  // Writes into room kept in `out` rather than appending: a call into
  // std::string per primitive was a third of the encoding time.
  BOOST_FORCEINLINE void save_binary(const void* address, std::size_t count) {
    if (count > static_cast<std::size_t>(end_ - pos_)) grow(count);
    copy_bytes(pos_, static_cast<const char*>(address), count);
    pos_ += count;
  }

 private:
  friend class boost::archive::detail::interface_oarchive<AttributeOArchive>;
  friend class boost::archive::basic_binary_oarchive<AttributeOArchive>;
  friend class boost::archive::save_access;

  template <class T>
  void save_override(const T& t) {
    if constexpr (graph::kGraphCoarserThanBytes<T>) coarser_ = true;
    if constexpr (kSavedWithClassInfo<T>) {
      save_class_object(t);
    } else {
      this->boost::archive::basic_binary_oarchive<AttributeOArchive>::save_override(t);
    }
  }

  // Objects Boost saves with class information (save_standard): the first
  // of a type in this archive goes through Boost (it registers the type,
  // writes its class information once and decides its tracking). Later
  // ones of an untracked type would only look the type up again in
  // Boost's registry and call its serializer through a virtual call, which
  // writes nothing else: for a cart's 20 line items that bookkeeping was a
  // third of the encoding. They are serialized directly instead, as
  // oserializer<Archive, T>::save_object_data does, so the bytes are
  // Boost's. A tracked type (saved through a pointer somewhere) always goes
  // through Boost: its objects get ids.
  template <class T>
  static constexpr bool kSavedWithClassInfo =
      std::is_class_v<T> && !std::is_pointer_v<T> &&
      boost::serialization::implementation_level<T>::value >= boost::serialization::object_class_info;

  template <class T>
  void save_class_object(const T& t) {
    const boost::archive::detail::basic_oserializer* serializer = &boost::serialization::singleton<
        boost::archive::detail::oserializer<AttributeOArchive, T>>::get_const_instance();
    for (std::size_t i = 0; i < untracked_count_; ++i)
      if (untracked_[i] == serializer) {
        boost::serialization::serialize_adl(*this, const_cast<T&>(t), boost::serialization::version<T>::value);
        return;
      }
    this->boost::archive::basic_binary_oarchive<AttributeOArchive>::save_override(t);
    if (untracked_count_ < untracked_.size() && !serializer->tracking(this->get_flags()))
      untracked_[untracked_count_++] = serializer;
  }

  // Boost calls end_preamble() before each primitive (save_access): the
  // base's is a no-op (it closes a tag in XML archives), but a call into
  // libboost_serialization that the compiler cannot see through, so every
  // primitive of a value reloaded the write position from memory around it
  // (that was most of a cart's encoding time). Hidden by an inline no-op.
  void end_preamble() noexcept {}

  // The primitives, byte for byte as basic_binary_oprimitive<...>::save.
  // Numbers are stored whole (see Word): one store each, past which the
  // slack may take a few bytes that the next save overwrites.
  template <class T>
  BOOST_FORCEINLINE void save(const T& t) {
    if constexpr (std::is_arithmetic_v<T> && sizeof(T) <= 8) {
      if (sizeof(T) > static_cast<std::size_t>(end_ - pos_)) grow(sizeof(T));
      if constexpr (sizeof(T) == 8) {
        store<Word64>(pos_, load<Word64>(&t));
      } else {
        std::uint32_t w = 0;
        std::memcpy(&w, &t, sizeof(T));
        store<Word32>(pos_, Word32{w});  // 1, 2 or 4 bytes of it count
      }
      pos_ += sizeof(T);
    } else {
      save_binary(&t, sizeof(T));
    }
  }
  void save(const std::string& s) {
    const std::size_t l = s.size();
    save(l);
    save_binary(s.data(), l);
  }
  void save(const std::wstring& ws) {
    const std::size_t l = ws.size();
    save(l);
    save_binary(ws.data(), l * sizeof(wchar_t));
  }
  void save(const char* s) {
    const std::size_t l = std::strlen(s);
    save(l);
    save_binary(s, l);
  }
  void save(const wchar_t* ws) {
    const std::size_t l = std::wcslen(ws);
    save(l);
    save_binary(ws, l * sizeof(wchar_t));
  }

  BOOST_NOINLINE void grow(std::size_t count) {
    const std::size_t written = static_cast<std::size_t>(pos_ - out_.data());
    out_.resize(std::max(2 * out_.size(), written + count + kSlack));
    // std::string doubled its capacity past the size asked for: use all of
    // it, or the next doubling of the size doubles the capacity again (a
    // 1.4 KiB cart ended in 4.8 KiB of buffer).
    out_.resize(out_.capacity());
    pos_ = out_.data() + written;
    end_ = out_.data() + out_.size() - kSlack;
  }

  // Bytes are written through integer types, not char: a char store may
  // alias anything, the archive's own write position included, so after
  // each one the compiler reloaded the position from memory, and the
  // encoding of a cart's 20 line items was one long chain of store-to-load
  // waits (~60% of its time). Integer stores cannot alias the char*
  // members, which stay in registers. Reads of the source go through
  // std::memcpy into a local (any object may be read as bytes); stores go
  // through packed structs (alignment 1: any address is theirs).
  struct [[gnu::packed]] Word64 {
    unsigned long long value;
  };
  struct [[gnu::packed]] Word32 {
    std::uint32_t value;
  };
  template <class W>
  BOOST_FORCEINLINE static W load(const void* from) {
    W w;
    std::memcpy(&w, from, sizeof(W));
    return w;
  }
  template <class W>
  BOOST_FORCEINLINE static void store(char* to, W w) {
    *reinterpret_cast<W*>(to) = w;
  }
  // Copies n bytes without reading past `from + n`; may write up to 3
  // bytes past `to + n` (into the slack). Short runs, a string's usual
  // size, are a few overlapping word copies; long ones std::memcpy.
  BOOST_FORCEINLINE static void copy_bytes(char* to, const char* from, std::size_t n) {
    if (n >= 8) {
      if (n > 64) {
        std::memcpy(to, from, n);
        return;
      }
      for (std::size_t i = 0; i + 8 < n; i += 8) store<Word64>(to + i, load<Word64>(from + i));
      store<Word64>(to + n - 8, load<Word64>(from + n - 8));
    } else if (n >= 4) {
      store<Word32>(to, load<Word32>(from));
      store<Word32>(to + n - 4, load<Word32>(from + n - 4));
    } else if (n > 0) {  // bytes 0, n/2 and n-1 cover 1 to 3 bytes
      const auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(from[i])); };
      store<Word32>(to, Word32{byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16});
    }
  }

  static constexpr std::size_t kMinRoom = 64;
  static constexpr std::size_t kSlack = 8;  // past end_: whole-word stores of short runs
  // Untracked types already saved once with their class information (see
  // save_class_object); a value holds few types, the rest go through Boost.
  std::array<const boost::archive::detail::basic_oserializer*, 8> untracked_{};
  std::size_t untracked_count_ = 0;
  std::string& out_;
  char* pos_ = nullptr;  // next byte to write in `out_`
  char* end_ = nullptr;  // of the room; kSlack more bytes follow it in `out_`
  bool coarser_ = false;
};

}  // namespace shmsession::sync

BOOST_SERIALIZATION_REGISTER_ARCHIVE(shmsession::sync::AttributeOArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(shmsession::sync::AttributeOArchive)
