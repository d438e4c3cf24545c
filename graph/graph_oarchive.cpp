#include "graph/graph_oarchive.hpp"

#include <boost/archive/impl/archive_serializer_map.ipp>

#include <string_view>

// Boost keeps one serializer registry per archive type; a new archive
// instantiates its own here.
template class boost::archive::detail::archive_serializer_map<shmsession::graph::GraphOArchive>;

namespace shmsession::graph {

GraphOArchive::GraphOArchive() : common_oarchive<GraphOArchive>(boost::archive::no_header) {}

GraphOArchive::~GraphOArchive() = default;

std::shared_ptr<const detail::GraphData> GraphOArchive::release() { return builder_.finish(); }

void GraphOArchive::save_binary(const void* address, std::size_t count) {
  builder_.set_bytes(detail::ValueTag::Binary, std::string_view{static_cast<const char*>(address), count});
}

void GraphOArchive::save_override(const boost::archive::object_id_type& t) {
  builder_.note_object_id(static_cast<std::uint32_t>(t));
}

void GraphOArchive::save_override(const boost::archive::object_reference_type& t) {
  builder_.note_reference(static_cast<std::uint32_t>(t));
}

}  // namespace shmsession::graph
