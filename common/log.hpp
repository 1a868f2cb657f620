// Minimal leveled logging on fmt. Control plane and startup only: workers never log per packet.
#pragma once

#include <fmt/format.h>

#include "common/config.hpp"

namespace lm::log {

void set_level(LogLevel l);
LogLevel level();
void write(LogLevel l, std::string_view msg);

template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) {
    if (level() <= LogLevel::Debug) write(LogLevel::Debug, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
    if (level() <= LogLevel::Info) write(LogLevel::Info, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) {
    if (level() <= LogLevel::Warning) write(LogLevel::Warning, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) {
    write(LogLevel::Error, fmt::format(f, std::forward<A>(a)...));
}

std::optional<LogLevel> parse_level(std::string_view s);

}  // namespace lm::log
