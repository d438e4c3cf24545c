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
// Usage: detail::encode_value<T> (sync/attribute_codec.hpp). Polymorphic
// pointees must be exported with this header included before
// BOOST_CLASS_EXPORT, as for any archive (attribute_codec.hpp includes it).
//
// Thread safety: an archive belongs to one thread; any number may run at
// once (Boost's serializer registry is only read after static init).
#pragma once

#include <boost/archive/basic_archive.hpp>
#include <boost/config.hpp>
#include <boost/archive/basic_binary_oarchive.hpp>
#include <boost/archive/detail/oserializer.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <boost/serialization/is_bitwise_serializable.hpp>

#include <cstddef>
#include <cstring>
#include <cwchar>
#include <algorithm>
#include <array>
#include <string>
#include <type_traits>

#include "graph/object_graph.hpp"

namespace shmsession::sync::detail {

class AttributeOArchive : public boost::archive::basic_binary_oarchive<AttributeOArchive> {
 public:
  // Appends to `out`, which must outlive the archive. Until finish() (or
  // the destructor) `out` also holds scratch space past what was written.
  explicit AttributeOArchive(std::string& out)
      : boost::archive::basic_binary_oarchive<AttributeOArchive>(boost::archive::no_header |
                                                                 boost::archive::no_codecvt),
        out_(out),
        written_(out.size()) {
    out_.resize(std::max(out_.capacity(), written_ + kMinRoom));
    room_ = out_.size() - written_;
  }
  AttributeOArchive(const AttributeOArchive&) = delete;
  AttributeOArchive& operator=(const AttributeOArchive&) = delete;
  ~AttributeOArchive() { finish(); }

  // Cuts `out` to what was written. Idempotent.
  void finish() {
    out_.resize(written_);
    room_ = 0;
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
  // std::string per primitive was a third of the encoding time. Inlined so
  // that a number's copy has a constant size.
  BOOST_FORCEINLINE void save_binary(const void* address, std::size_t count) {
    if (count > room_) grow(count);
    std::memcpy(out_.data() + written_, address, count);
    written_ += count;
    room_ -= count;
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
    const boost::archive::detail::basic_oserializer* serializer =
        &boost::serialization::singleton<boost::archive::detail::oserializer<AttributeOArchive, T>>::get_const_instance();
    for (std::size_t i = 0; i < untracked_count_; ++i)
      if (untracked_[i] == serializer) {
        boost::serialization::serialize_adl(*this, const_cast<T&>(t), boost::serialization::version<T>::value);
        return;
      }
    this->boost::archive::basic_binary_oarchive<AttributeOArchive>::save_override(t);
    if (untracked_count_ < untracked_.size() && !serializer->tracking(this->get_flags()))
      untracked_[untracked_count_++] = serializer;
  }

  // The primitives, byte for byte as basic_binary_oprimitive<...>::save.
  template <class T>
  void save(const T& t) {
    save_binary(&t, sizeof(T));
  }
  void save(const bool t) { save_binary(&t, sizeof(t)); }
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
    out_.resize(std::max(2 * out_.size(), written_ + count));
    room_ = out_.size() - written_;
  }

  static constexpr std::size_t kMinRoom = 64;
  // Untracked types already saved once with their class information (see
  // save_class_object); a value holds few types, the rest go through Boost.
  std::array<const boost::archive::detail::basic_oserializer*, 8> untracked_{};
  std::size_t untracked_count_ = 0;
  std::string& out_;
  std::size_t written_;  // bytes of `out_` written; the rest is room
  std::size_t room_ = 0;
  bool coarser_ = false;
};

}  // namespace shmsession::sync::detail

BOOST_SERIALIZATION_REGISTER_ARCHIVE(shmsession::sync::detail::AttributeOArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(shmsession::sync::detail::AttributeOArchive)
