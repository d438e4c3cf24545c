#include "graph/graph_oarchive.hpp"

#include "graph/detail/graph_builder.hpp"
#include "graph/object_graph.hpp"

#include <boost/archive/impl/archive_serializer_map.ipp>

#include <string_view>

// Boost keeps one serializer registry per archive type; a new archive
// instantiates its own here.
template class boost::archive::detail::archive_serializer_map<shmsession::graph::GraphOArchive>;

namespace shmsession::graph {

GraphOArchive::GraphOArchive()
    : common_oarchive<GraphOArchive>(boost::archive::no_header), builder_(std::make_unique<detail::GraphBuilder>()) {}

GraphOArchive::~GraphOArchive() = default;

ObjectGraph GraphOArchive::release() { return ObjectGraph(builder_->finish()); }

void GraphOArchive::save_binary(const void* address, std::size_t count) {
  builder_->set_bytes(ValueTag::Binary, std::string_view{static_cast<const char*>(address), count});
}

void GraphOArchive::save_override(const boost::archive::object_id_type& t) {
  builder_->note_object_id(static_cast<std::uint32_t>(t));
}

void GraphOArchive::save_override(const boost::archive::object_reference_type& t) {
  builder_->note_reference(static_cast<std::uint32_t>(t));
}

void GraphOArchive::open_node(const char* name, const TypeEntry& type, NodeKind kind, Absorb absorb) {
  builder_->open(name, type, kind, absorb);
}

void GraphOArchive::close_node() { builder_->close(); }

void GraphOArchive::add_scalar(const char* name, const TypeEntry& type, ValueTag tag, std::uint64_t bits) {
  builder_->add_scalar(name, type, tag, bits);
}

void GraphOArchive::add_bytes(const char* name, const TypeEntry& type, ValueTag tag, std::string_view bytes) {
  builder_->add_bytes(name, type, tag, bytes);
}

void GraphOArchive::set_bytes(ValueTag tag, std::string_view bytes) { builder_->set_bytes(tag, bytes); }

void GraphOArchive::note_count() { builder_->note_count(); }

bool GraphOArchive::absorbs(Absorb what) const noexcept { return builder_->absorbs(what); }

}  // namespace shmsession::graph
