#include "common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>

namespace lm::log {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};
const char* name(LogLevel l) {
    switch (l) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warning: return "warning";
        case LogLevel::Error: return "error";
    }
    return "?";
}
}  // namespace

void set_level(LogLevel l) { g_level.store(l, std::memory_order_relaxed); }
LogLevel level() { return g_level.load(std::memory_order_relaxed); }

void write(LogLevel l, std::string_view msg) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    // One fprintf per line so concurrent writers do not interleave within a line.
    std::fprintf(stderr, "%lld.%03lld lm-router %s: %.*s\n", (long long)(ms / 1000), (long long)(ms % 1000),
                 name(l), int(msg.size()), msg.data());
}

std::optional<LogLevel> parse_level(std::string_view s) {
    if (s == "debug") return LogLevel::Debug;
    if (s == "info") return LogLevel::Info;
    if (s == "warning" || s == "warn") return LogLevel::Warning;
    if (s == "error") return LogLevel::Error;
    return std::nullopt;
}

}  // namespace lm::log
