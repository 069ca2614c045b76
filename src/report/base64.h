// report::Base64: RFC 4648 base64, for images embedded in HTML reports (data: URIs) and face
// crops carried in queue results (queue/entry.h). Pure functions, thread-safe.
#ifndef DEEPSCAN_REPORT_BASE64_H_
#define DEEPSCAN_REPORT_BASE64_H_

#include <string>
#include <string_view>

#include "deepscan/status.h"

namespace deepscan::report {

// RFC 4648 base64 with padding.
std::string Base64(std::string_view bytes);
// Its inverse, strict: only the alphabet, padded to a multiple of 4, no white space. Takes
// untrusted input (queue records; fuzzed by fuzz/queue_entry_fuzz.cc). Errors: kCorruptInput.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_BASE64_H_
