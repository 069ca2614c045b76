// deepscan/version.h: the library version (semantic versioning).
#ifndef DEEPSCAN_VERSION_H_
#define DEEPSCAN_VERSION_H_

namespace deepscan {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace deepscan

#endif  // DEEPSCAN_VERSION_H_
