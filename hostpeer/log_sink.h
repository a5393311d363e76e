// log_sink.h: hostpeer's spdlog output, handed to the embedding program's
// Options::log callback, so that the public API does not depend on spdlog.
//
//   auto logger = make_logger(options.log, options.log_level);  // never null
//   logger->warn("refused {}", who);  // reaches options.log as (kWarn, "refused ...")
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

#include "vmci/host/hostpeer.h"

namespace vmci::host {

// Passes each message's text (no time stamp, no level name) to a
// LogCallback. base_sink's mutex makes the calls one at a time.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogCallback callback) : callback_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    callback_(level_of(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  static LogLevel level_of(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace: return LogLevel::kTrace;
      case spdlog::level::debug: return LogLevel::kDebug;
      case spdlog::level::info: return LogLevel::kInfo;
      case spdlog::level::warn: return LogLevel::kWarn;
      default: return LogLevel::kError;  // err, critical
    }
  }

  LogCallback callback_;
};

inline spdlog::level::level_enum spdlog_level(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::err;
}

// hostpeer's logger: to `callback` from `least` up; with no callback, one
// that makes nothing (level off).
inline std::shared_ptr<spdlog::logger> make_logger(const LogCallback& callback, LogLevel least) {
  if (!callback) {
    auto quiet = std::make_shared<spdlog::logger>("hostpeer");  // no sink
    quiet->set_level(spdlog::level::off);
    return quiet;
  }
  auto logger = std::make_shared<spdlog::logger>("hostpeer", std::make_shared<CallbackSink>(callback));
  logger->set_level(spdlog_level(least));
  return logger;
}

}  // namespace vmci::host
