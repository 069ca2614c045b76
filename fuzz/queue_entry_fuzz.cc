// libFuzzer target: the work queue's decoders (src/queue/entry.h), which read what any client of
// the queue's Redis may have written: stream entry fields, results, done and failure records,
// and queue URLs. Build and run: scripts/fuzz.sh. Seeds: fuzz/seeds/queue_entry_fuzz.
// Input: the first byte picks the decoder; for entries the rest is split at NUL bytes into the
// flat field list. Properties: never crashes; refuses with kCorruptInput (URLs: kInvalidArgument
// or kNotSupported) only; whatever it accepts encodes and decodes back to the same encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "queue/entry.h"
#include "queue/redis_url.h"

using namespace deepscan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      std::vector<std::string> fields;
      size_t start = 0;
      for (size_t i = 0; i <= rest.size(); ++i) {
        if (i == rest.size() || rest[i] == '\0') {
          fields.emplace_back(rest.substr(start, i - start));
          start = i + 1;
        }
      }
      auto e = queue::DecodeEntry("1-0", fields);
      if (!e.ok()) {
        if (e.status().code() != Code::kCorruptInput) __builtin_trap();
        return 0;
      }
      auto again = queue::DecodeEntry("1-0", queue::EncodeEntry(*e));
      if (!again.ok() || queue::EncodeEntry(*again) != queue::EncodeEntry(*e)) __builtin_trap();
      return 0;
    }
    case 1: {
      auto r = queue::DecodeResult(rest);
      if (!r.ok()) {
        if (r.status().code() != Code::kCorruptInput) __builtin_trap();
        return 0;
      }
      const std::string text = queue::EncodeResult(*r);
      auto again = queue::DecodeResult(text);
      if (!again.ok() || queue::EncodeResult(*again) != text) __builtin_trap();
      return 0;
    }
    case 2: {
      auto d = queue::DecodeDone(rest);
      if (!d.ok()) {
        if (d.status().code() != Code::kCorruptInput) __builtin_trap();
        return 0;
      }
      const std::string text = queue::EncodeDone(*d);
      auto again = queue::DecodeDone(text);
      if (!again.ok() || queue::EncodeDone(*again) != text) __builtin_trap();
      return 0;
    }
    case 3: {
      auto f = queue::DecodeFailure(rest);
      if (!f.ok()) {
        if (f.status().code() != Code::kCorruptInput) __builtin_trap();
        return 0;
      }
      const std::string text = queue::EncodeFailure(*f);
      auto again = queue::DecodeFailure(text);
      if (!again.ok() || queue::EncodeFailure(*again) != text) __builtin_trap();
      return 0;
    }
    default: {
      auto u = queue::ParseRedisUrl(rest);
      if (!u.ok()) {
        Code c = u.status().code();
        if (c != Code::kInvalidArgument && c != Code::kNotSupported) __builtin_trap();
        return 0;
      }
      if (u->port < 1 || u->port > 65535 || u->host.empty()) __builtin_trap();
      return 0;
    }
  }
}
