#include "shm/error.hpp"

namespace shmsession {

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::SegmentFull: return "SegmentFull";
    case Errc::NotFound: return "NotFound";
    case Errc::AlreadyExists: return "AlreadyExists";
    case Errc::StaleToken: return "StaleToken";
    case Errc::LockTimeout: return "LockTimeout";
    case Errc::LayoutMismatch: return "LayoutMismatch";
    case Errc::InvalidArgument: return "InvalidArgument";
    case Errc::Corrupt: return "Corrupt";
    case Errc::Io: return "Io";
  }
  return "Unknown";
}

bool errc_retryable(Errc code) noexcept {
  return code == Errc::LockTimeout || code == Errc::SegmentFull;
}

}  // namespace shmsession
