// lmctl: the operator's client for lm-router.
//
//   lmctl pki init  --dir DIR [--name NAME] [--days N] [--key-type T] [--force]   create the domain CA (DIR/ca.key, DIR/ca.crt)
//   lmctl pki issue --dir DIR --name AR [--days N] [--key-type T] [--force]       issue an AR identity (DIR/AR.key, DIR/AR.crt)
//   lmctl [-f PREFIX | --socket PATH] [--json] COMMAND             query a running router over DPDK telemetry
//
// Telemetry: DPDK's v2 socket (<runtime dir>/dpdk/<file-prefix>/dpdk_telemetry.v2), SOCK_SEQPACKET. The server
// sends a JSON hello on connect, then answers each command written to it with one JSON message
// {"<command>": <value>}; <value> is null for an unknown command or a rejected parameter.
//
// Exit status: 0 ok, 1 operational error (router not reachable, file problem), 2 usage error.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/types.hpp"
#include "dht/pki.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: lmctl [-f FILE_PREFIX | --socket PATH] [--json] COMMAND [OPTIONS]\n"
    "       lmctl pki init  --dir DIR [--name NAME] [--days N] [--key-type T] [--force]\n"
    "       lmctl pki issue --dir DIR --name AR_NAME [--days N] [--key-type T] [--force]\n"
    "router commands: info | stats [--worker N] | drops [--worker N] [--all] | ports |\n"
    "                 mappings [--page N] | nexthop | dht | attached | resolve [--tenant T] EID |\n"
    "                 attach --tenant T --mo ID --mac MAC --port PORT EID... | detach --tenant T --mo ID [--withdraw] |\n"
    "                 migrate-begin --tenant T --mo ID | migrate-abort --tenant T --mo ID | handover |\n"
    "                 raw CMD\n"
    "try 'lmctl --help' for details\n";

// Errors with an exit status: Usage -> 2, Failure -> 1.
struct Usage : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- minimal JSON (what rte_telemetry emits: objects, arrays, strings, numbers, null) ----------------------

struct Json {
    enum class Type { Null, Bool, Number, String, Array, Object } type = Type::Null;
    std::string text;  // Number: the literal as sent (u64 precision kept); String: decoded; Bool: "true"/"false"
    std::vector<Json> items;                         // Array
    std::vector<std::pair<std::string, Json>> members;  // Object, in the order sent

    bool is_null() const { return type == Type::Null; }
    const Json* get(const std::string& k) const {
        for (auto& [n, v] : members)
            if (n == k) return &v;
        return nullptr;
    }
    // A scalar as text for tables.
    std::string str() const {
        switch (type) {
        case Type::Null: return "null";
        case Type::Array: return fmt::format("[{} items]", items.size());
        case Type::Object: return fmt::format("{{{} members}}", members.size());
        default: return text;
        }
    }
};

class JsonParser {
public:
    explicit JsonParser(const std::string& s) : s_(s) {}
    Json parse() {
        Json v = value();
        ws();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const char* what) {
        throw Failure(fmt::format("malformed reply from the router ({} at offset {})", what, i_));
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        ws();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) fail("unexpected character");
    }
    bool literal(const char* w) {
        size_t n = std::strlen(w);
        if (s_.compare(i_, n, w) != 0) return false;
        i_ += n;
        return true;
    }
    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }
    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        expect('"');
        std::string out;
        while (true) {
            if (i_ >= s_.size()) fail("unterminated string");
            char c = s_[i_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) fail("unterminated string");
            switch (char e = s_[i_++]) {
            case '"': case '\\': case '/': out += e; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                unsigned cp = hex4();
                if (cp >= 0xd800 && cp < 0xdc00 && s_.compare(i_, 2, "\\u") == 0) {
                    i_ += 2;
                    unsigned lo = hex4();
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                utf8(out, cp);
                break;
            }
            default: fail("bad escape");
            }
        }
    }
    Json value() {
        if (++depth_ > 32) fail("nesting too deep");
        ws();
        if (i_ >= s_.size()) fail("unexpected end");
        Json v;
        char c = s_[i_];
        if (c == '{') {
            v.type = Json::Type::Object;
            ++i_;
            if (!eat('}')) {
                do {
                    ws();
                    std::string k = string();
                    expect(':');
                    v.members.emplace_back(std::move(k), value());
                } while (eat(','));
                expect('}');
            }
        } else if (c == '[') {
            v.type = Json::Type::Array;
            ++i_;
            if (!eat(']')) {
                do v.items.push_back(value());
                while (eat(','));
                expect(']');
            }
        } else if (c == '"') {
            v.type = Json::Type::String;
            v.text = string();
        } else if (literal("null")) {
            v.type = Json::Type::Null;
        } else if (literal("true")) {
            v.type = Json::Type::Bool;
            v.text = "true";
        } else if (literal("false")) {
            v.type = Json::Type::Bool;
            v.text = "false";
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t b = i_;
            while (i_ < s_.size() && std::strchr("+-.eE0123456789", s_[i_])) ++i_;
            v.type = Json::Type::Number;
            v.text = s_.substr(b, i_ - b);
        } else {
            fail("unexpected character");
        }
        --depth_;
        return v;
    }

    const std::string& s_;
    size_t i_ = 0;
    int depth_ = 0;
};

std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += char(c);
        }
    }
    return out + '"';
}

std::string json_dump(const Json& v) {
    switch (v.type) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool:
    case Json::Type::Number: return v.text;
    case Json::Type::String: return json_quote(v.text);
    case Json::Type::Array: {
        std::string out = "[";
        for (size_t i = 0; i < v.items.size(); ++i) out += (i ? "," : "") + json_dump(v.items[i]);
        return out + "]";
    }
    case Json::Type::Object: {
        std::string out = "{";
        for (size_t i = 0; i < v.members.size(); ++i)
            out += (i ? "," : "") + json_quote(v.members[i].first) + ":" + json_dump(v.members[i].second);
        return out + "}";
    }
    }
    return "null";
}

// ---- telemetry client ------------------------------------------------------------------------------------

// Where EAL puts its runtime directory (eal_get_runtime_dir): /var/run for root, else $XDG_RUNTIME_DIR or /tmp.
std::string socket_path_for_prefix(const std::string& prefix) {
    std::string base = "/var/run";
    if (::getuid() != 0) {
        const char* x = std::getenv("XDG_RUNTIME_DIR");
        base = x && *x ? x : "/tmp";
    }
    return fmt::format("{}/dpdk/{}/dpdk_telemetry.v2", base, prefix);
}

class Telemetry {
public:
    Telemetry(std::string path, std::string hint) : path_(std::move(path)), hint_(std::move(hint)) {}
    ~Telemetry() {
        if (fd_ >= 0) ::close(fd_);
    }
    Telemetry(const Telemetry&) = delete;
    Telemetry& operator=(const Telemetry&) = delete;

    // One command, one reply: the raw text and the value under the command's key.
    std::pair<std::string, Json> query(const std::string& cmd) {
        connect();
        if (::send(fd_, cmd.data(), cmd.size(), MSG_NOSIGNAL) < 0)
            throw Failure(fmt::format("cannot send to router telemetry socket {}: {}", path_, std::strerror(errno)));
        std::string raw = receive("reply to " + cmd);
        Json j = JsonParser(raw).parse();
        if (j.type != Json::Type::Object || j.members.size() != 1)
            throw Failure(fmt::format("unexpected reply from {} to {}: {}", path_, cmd, raw));
        return {raw, std::move(j.members[0].second)};
    }

    const std::string& path() const { return path_; }

private:
    void connect() {
        if (fd_ >= 0) return;
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        if (path_.size() >= sizeof(sun.sun_path)) throw Usage(fmt::format("--socket: path too long: {}", path_));
        std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
        fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw Failure(fmt::format("socket(): {}", std::strerror(errno)));
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
            int e = errno;
            throw Failure(fmt::format("cannot connect to router telemetry socket {}: {}{}", path_, std::strerror(e),
                                      e == ENOENT || e == ECONNREFUSED ? hint_ : ""));
        }
        std::string hello = receive("hello");
        Json h = JsonParser(hello).parse();
        if (auto* m = h.get("max_output_len"); m && m->type == Json::Type::Number)
            max_output_ = std::max<size_t>(max_output_, std::strtoull(m->text.c_str(), nullptr, 10) + 1);
    }

    std::string receive(const std::string& what) {
        std::string buf(max_output_, '\0');
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
        if (n < 0) {
            int e = errno;
            throw Failure(fmt::format("no {} from router telemetry socket {}: {}", what, path_,
                                      e == EAGAIN || e == EWOULDBLOCK ? "timed out" : std::strerror(e)));
        }
        if (n == 0)
            throw Failure(fmt::format("router telemetry socket {} closed the connection before the {} "
                                      "(too many telemetry clients?)",
                                      path_, what));
        if (size_t(n) > buf.size())
            throw Failure(fmt::format("{} from {} is {} bytes, larger than expected", what, path_, n));
        buf.resize(size_t(n));
        return buf;
    }

    std::string path_, hint_;
    int fd_ = -1;
    size_t max_output_ = 64 * 1024;
};

// ---- tables --------------------------------------------------------------------------------------------------

// Columns left-aligned unless the column is numeric in every row (then right-aligned).
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    size_t ncol = header.size();
    std::vector<size_t> w(ncol, 0);
    std::vector<bool> numeric(ncol, !rows.empty());
    auto is_num = [](const std::string& s) {
        return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
    };
    for (size_t c = 0; c < ncol; ++c) w[c] = header[c].size();
    for (auto& r : rows)
        for (size_t c = 0; c < ncol && c < r.size(); ++c) {
            w[c] = std::max(w[c], r[c].size());
            if (!is_num(r[c])) numeric[c] = false;
        }
    auto line = [&](const std::vector<std::string>& r) {
        std::string out;
        for (size_t c = 0; c < ncol; ++c) {
            const std::string& cell = c < r.size() ? r[c] : std::string();
            bool last = c + 1 == ncol;
            if (numeric[c]) out += fmt::format("{:>{}}", cell, w[c]);
            else out += last ? cell : fmt::format("{:<{}}", cell, w[c]);
            if (!last) out += "  ";
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        fmt::print("{}\n", out);
    };
    line(header);
    for (auto& r : rows) line(r);
}

// A flat dict as two columns.
void print_dict(const Json& d, const char* k = "key", const char* v = "value", bool skip_zero = false) {
    std::vector<std::vector<std::string>> rows;
    for (auto& [n, val] : d.members) {
        if (skip_zero && val.type == Json::Type::Number && val.text == "0") continue;
        rows.push_back({n, val.str()});
    }
    print_table({k, v}, rows);
}

std::vector<std::string> split_ws(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        size_t b = s.find_first_not_of(' ', i);
        if (b == std::string::npos) break;
        size_t e = s.find(' ', b);
        if (e == std::string::npos) e = s.size();
        out.push_back(s.substr(b, e - b));
        i = e;
    }
    return out;
}

// ---- argument helpers ------------------------------------------------------------------------------------------

unsigned long parse_number(const std::string& opt, const std::string& s, unsigned long max) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
        throw Usage(fmt::format("{}: '{}' is not a non-negative number", opt, s));
    errno = 0;
    unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
    if (errno == ERANGE || v > max) throw Usage(fmt::format("{}: '{}' is out of range (0..{})", opt, s, max));
    return v;
}

struct Args {
    po::variables_map vm;
    std::vector<std::string> words;  // positional: command and its arguments
    bool json = false;

    bool has(const char* k) const { return vm.count(k) > 0; }
    std::string s(const char* k) const { return vm[k].as<std::string>(); }
};

// Options given that the command does not take are usage errors.
void allow_only(const Args& a, const std::string& cmd, std::initializer_list<const char*> allowed) {
    static const char* kCmdOptions[] = {"worker", "all", "page", "dir", "name", "days", "key-type", "force"};
    for (const char* o : kCmdOptions) {
        if (!a.has(o)) continue;
        bool ok = false;
        for (const char* x : allowed) ok = ok || std::strcmp(x, o) == 0;
        if (!ok) throw Usage(fmt::format("'{}' does not take --{}", cmd, o));
    }
}

void expect_words(const Args& a, size_t n, const std::string& cmd) {
    if (a.words.size() > n) throw Usage(fmt::format("'{}': unexpected argument '{}'", cmd, a.words[n]));
}

// ---- pki --------------------------------------------------------------------------------------------------------

bool valid_file_name(const std::string& n) {
    if (n.empty() || n.size() > 64 || n[0] == '.' || n[0] == '-') return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

int64_t days_option(const Args& a, int64_t default_s) {
    if (!a.has("days")) return default_s;
    auto d = parse_number("--days", a.s("days"), 36500);
    if (d == 0) throw Usage("--days: must be at least 1");
    return int64_t(d) * 86400;
}

int cmd_pki(const Args& a) {
    if (a.words.size() < 2) throw Usage("'pki' needs a subcommand: init or issue");
    const std::string sub = a.words[1];
    if (sub != "init" && sub != "issue") throw Usage(fmt::format("unknown pki subcommand '{}' (expected init or issue)", sub));
    const std::string cmd = "pki " + sub;
    expect_words(a, 2, cmd);
    allow_only(a, cmd, {"dir", "name", "days", "key-type", "force"});
    if (!a.has("dir")) throw Usage(fmt::format("'{}' needs --dir DIR", cmd));
    const fs::path dir = a.s("dir");
    const bool force = a.has("force");
    const fs::path ca_key = dir / "ca.key", ca_crt = dir / "ca.crt";
    lm::dir::KeyType key_type;  // pki init: Ed25519; pki issue: the CA's type (below)
    if (a.has("key-type")) {
        auto t = lm::dir::KeyType::parse(a.s("key-type"));
        if (!t) throw Usage(fmt::format("--key-type: '{}' is not one of ed25519, rsa2048, rsa3072, rsa4096", a.s("key-type")));
        key_type = *t;
    }

    if (sub == "init") {
        const std::string name = a.has("name") ? a.s("name") : "LM domain CA";
        if (name.empty()) throw Usage("--name: must not be empty");
        const int64_t validity = days_option(a, lm::dir::kCaValiditySeconds);
        for (auto& p : {ca_key, ca_crt})
            if (fs::exists(p) && !force)
                throw Failure(fmt::format("{} already exists: refusing to replace the domain CA (use --force; every "
                                          "AR identity it issued must then be re-issued)",
                                          p.string()));
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) throw Failure(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
        auto ca = lm::dir::create_domain_ca(name, key_type, validity);
        lm::dir::save_identity(ca, ca_key.string(), ca_crt.string());
        fmt::print("created domain CA '{}' ({}) valid {} days:\n  {}  (private key, mode 0600: keep it off the routers)\n  {}"
                   "  (give it to every AR: dht.ca_cert)\n",
                   name, key_type.str(), validity / 86400, ca_key.string(), ca_crt.string());
        fmt::print("next: lmctl pki issue --dir {} --name AR_NAME\n", dir.string());
        return 0;
    }

    if (!a.has("name")) throw Usage("'pki issue' needs --name AR_NAME");
    const std::string name = a.s("name");
    if (!valid_file_name(name) || name == "ca")
        throw Usage(fmt::format("--name: '{}' is not usable as an AR name (letters, digits, '-', '_', '.'; not 'ca')", name));
    const int64_t validity = days_option(a, lm::dir::kArValiditySeconds);
    if (!fs::exists(ca_key) || !fs::exists(ca_crt))
        throw Failure(fmt::format("no domain CA in {} ({} and {} are needed; create it with: lmctl pki init --dir {})",
                                  dir.string(), ca_key.string(), ca_crt.string(), dir.string()));
    const fs::path key = dir / (name + ".key"), crt = dir / (name + ".crt");
    for (auto& p : {key, crt})
        if (fs::exists(p) && !force)
            throw Failure(fmt::format("{} already exists: refusing to replace it (use --force)", p.string()));
    auto ca = lm::dir::load_identity(ca_key.string(), ca_crt.string());
    if (!ca.second->isCA()) throw Failure(fmt::format("{} is not a CA certificate", ca_crt.string()));
    // Without --key-type an AR gets its CA's key type: a domain made with RSA by an earlier
    // version keeps issuing RSA identities, which routers that predate Ed25519 can verify.
    if (!a.has("key-type")) key_type = lm::dir::key_type_of(*ca.first).value_or(lm::dir::KeyType::ed25519());
    auto id = lm::dir::issue_ar_identity(ca, name, key_type, validity);
    lm::dir::save_identity(id, key.string(), crt.string());
    fmt::print("issued AR identity '{}' ({}) signed by '{}', valid {} days:\n  {}  (private key, mode 0600)\n  {}\n", name,
               key_type.str(), ca.second->getName(), validity / 86400, key.string(), crt.string());
    fmt::print("router YAML (paths relative to the YAML file; copy ca.crt, {0}.key, {0}.crt next to it):\n"
               "  dht:\n    ca_cert: ca.crt\n    identity_key: {0}.key\n    identity_cert: {0}.crt\n",
               name);
    return 0;
}

// ---- router commands -----------------------------------------------------------------------------------------

// One request's value; null means the router rejected the command or its parameter.
Json must(Telemetry& t, const std::string& cmd, std::string* raw = nullptr) {
    auto [r, v] = t.query(cmd);
    if (v.is_null())
        throw Failure(fmt::format("router at {} rejected {} (command unknown to this lm-router version?)", t.path(), cmd));
    if (raw) *raw = std::move(r);
    return v;
}

// /lm/stats,N or /lm/drops,N: null for a worker the router does not have: say how many it has.
Json per_worker(Telemetry& t, const std::string& base, const Args& a) {
    if (!a.has("worker")) return must(t, base);
    unsigned long w = parse_number("--worker", a.s("worker"), 1023);
    auto [r, v] = t.query(fmt::format("{},{}", base, w));
    if (v.is_null()) {
        auto [ri, info] = t.query("/lm/info");
        auto* n = info.get("workers");
        unsigned long nw = n ? std::strtoul(n->text.c_str(), nullptr, 10) : 0;
        if (nw == 0) throw Usage(fmt::format("--worker {}: rejected by the router", w));
        throw Usage(fmt::format("--worker {}: no such worker (the router has {} worker(s), 0..{})", w, nw, nw - 1));
    }
    return v;
}

void print_json(const std::vector<std::pair<std::string, Json>>& replies) {
    Json o;
    o.type = Json::Type::Object;
    o.members = replies;
    fmt::print("{}\n", json_dump(o));
}

// A paged listing (/lm/mappings, /lm/attached): every page, or only --page N.
struct Paged {
    std::vector<std::pair<std::string, Json>> replies;
    std::vector<std::string> entries;
    unsigned long first = 0, total = 0, pages = 0;
};
Paged fetch_pages(Telemetry& t, const std::string& base, const Args& a) {
    Paged pg;
    unsigned long last = 0;
    if (a.has("page")) pg.first = last = parse_number("--page", a.s("page"), 1UL << 40);
    for (unsigned long p = pg.first; p <= last; ++p) {
        std::string c = fmt::format("{},{}", base, p);
        Json v = must(t, c);
        auto num = [&](const char* k) {
            auto* x = v.get(k);
            return x ? std::strtoul(x->text.c_str(), nullptr, 10) : 0UL;
        };
        pg.total = num("total");
        pg.pages = num("pages");
        if (!a.has("page") && pg.pages > 0) last = pg.pages - 1;
        if (auto* e = v.get("entries"))
            for (auto& s : e->items) pg.entries.push_back(s.str());
        pg.replies.emplace_back(c, std::move(v));
        if (p > 100000) break;  // a runaway page count from a broken router
    }
    return pg;
}

int cmd_router(const Args& a, Telemetry& t) {
    const std::string cmd = a.words[0];
    if (cmd == "raw") {
        allow_only(a, cmd, {});
        if (a.words.size() < 2) throw Usage("'raw' needs a telemetry command, e.g. lmctl raw /lm/stats,0");
        expect_words(a, 2, cmd);
        const std::string& c = a.words[1];
        if (c.empty() || c[0] != '/' || c.size() > 1000)
            throw Usage(fmt::format("raw: '{}' is not a telemetry command (they start with '/', e.g. /lm/info)", c));
        auto [r, v] = t.query(c);
        fmt::print("{}\n", r);
        if (v.is_null()) {
            fmt::print(stderr, "lmctl: router returned null for {} (unknown command or bad parameter)\n", c);
            return 1;
        }
        return 0;
    }
    if (cmd == "info" || cmd == "nexthop" || cmd == "dht" || cmd == "handover") {
        allow_only(a, cmd, {});
        expect_words(a, 1, cmd);
        std::string raw;
        Json v = must(t, "/lm/" + cmd, &raw);
        if (a.json) {
            fmt::print("{}\n", raw);
        } else if (cmd == "nexthop") {
            std::vector<std::vector<std::string>> rows;
            for (auto& [fam, val] : v.members) {
                auto f = split_ws(val.str());
                std::string state;
                for (size_t i = 2; i < f.size(); ++i) state += (i > 2 ? " " : "") + f[i];
                rows.push_back({fam, f.size() > 0 ? f[0] : "", f.size() > 1 ? f[1] : "", state});
            }
            if (rows.empty()) fmt::print("no core next hop configured\n");
            else print_table({"family", "next_hop", "mac", "state"}, rows);
        } else if (cmd == "dht") {
            auto* en = v.get("enabled");
            if (en && en->text == "0") fmt::print("LM directory (DHT): disabled (no dht: section in the config)\n");
            print_dict(v, "counter", "value");
        } else {
            print_dict(v, "field", "value");
        }
        return 0;
    }
    if (cmd == "stats" || cmd == "drops") {
        allow_only(a, cmd, cmd == "stats" ? std::initializer_list<const char*>{"worker"}
                                          : std::initializer_list<const char*>{"worker", "all"});
        expect_words(a, 1, cmd);
        const std::string base = "/lm/" + cmd;
        Json v = per_worker(t, base, a);
        if (a.json) {
            print_json({{a.has("worker") ? base + "," + a.s("worker") : base, v}});
            return 0;
        }
        if (a.has("worker")) fmt::print("worker {}\n", a.s("worker"));
        if (cmd == "stats") {
            print_dict(v, "counter", "value");
        } else {
            bool any = false;
            for (auto& [n, val] : v.members) any = any || val.text != "0";
            if (!any && !a.has("all")) fmt::print("no drops\n");
            else print_dict(v, "reason", "packets", !a.has("all"));
        }
        return 0;
    }
    if (cmd == "ports") {
        allow_only(a, cmd, {});
        expect_words(a, 1, cmd);
        std::vector<std::pair<std::string, Json>> replies;
        Json list = must(t, "/lm/port");
        replies.emplace_back("/lm/port", list);
        std::vector<std::vector<std::string>> rows;
        for (auto& [name, idx] : list.members) {
            std::string c = "/lm/port," + idx.str();
            Json p = must(t, c);
            auto f = [&](const char* k) { auto* x = p.get(k); return x ? x->str() : std::string("-"); };
            rows.push_back({idx.str(), f("name"), f("device"), f("role"), f("rx_packets"), f("rx_bytes"),
                            f("tx_packets"), f("tx_bytes")});
            replies.emplace_back(c, std::move(p));
        }
        if (a.json) print_json(replies);
        else print_table({"index", "name", "device", "role", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"}, rows);
        return 0;
    }
    if (cmd == "mappings") {
        allow_only(a, cmd, {"page"});
        expect_words(a, 1, cmd);
        const Paged pg = fetch_pages(t, "/lm/mappings", a);
        const auto& [replies, entries, first, total, pages] = pg;
        if (a.json) {
            print_json(replies);
            return 0;
        }
        // "tenant 1 192.0.2.20 mo 0x2a locator 198.51.100.2 epoch 1" / "tenant 1 192.0.2.10 mo 0x7 local port 0 mac M"
        std::vector<std::vector<std::string>> rows;
        for (auto& s : entries) {
            auto f = split_ws(s);
            if (f.size() >= 5 && f[0] == "tenant" && f[3] == "mo") {
                std::string rest;
                for (size_t i = 5; i < f.size(); ++i) rest += (i > 5 ? " " : "") + f[i];
                rows.push_back({f[1], f[2], f[4], rest});
            } else {
                rows.push_back({"", s, "", ""});
            }
        }
        if (a.has("page"))
            fmt::print("{} mapping(s) in {} page(s) of 64; page {}: {} mapping(s)\n", total, pages, first, rows.size());
        else
            fmt::print("{} mapping(s)\n", total);
        if (!rows.empty()) print_table({"tenant", "eid", "mo_id", "where"}, rows);
        return 0;
    }
    if (cmd == "resolve") {
        allow_only(a, cmd, {"tenant"});
        if (a.words.size() < 2) throw Usage("'resolve' needs an EID, e.g. lmctl resolve --tenant 1 192.0.2.20");
        expect_words(a, 2, cmd);
        const unsigned long tenant = a.has("tenant") ? parse_number("--tenant", a.s("tenant"), lm::kMaxTenant) : 0;
        if (!lm::IpAddr::parse(a.words[1]))
            throw Usage(fmt::format("resolve: '{}' is not an IPv4 or IPv6 address", a.words[1]));
        std::string raw;
        Json v = must(t, fmt::format("/lm/resolve,{},{}", tenant, a.words[1]), &raw);
        if (a.json) fmt::print("{}\n", raw);
        else fmt::print("{}\n", v.str());
        return 0;
    }
    if (cmd == "migrate-begin" || cmd == "migrate-abort") {
        allow_only(a, cmd, {"tenant", "mo"});
        for (const char* k : {"tenant", "mo"})
            if (!a.has(k)) throw Usage(fmt::format("'{}' needs --{}", cmd, k));
        expect_words(a, 1, cmd);
        const unsigned long tenant = parse_number("--tenant", a.s("tenant"), lm::kMaxTenant);
        const std::string c = fmt::format("/lm/{},{},{}", cmd == "migrate-begin" ? "migrate_begin" : "migrate_abort",
                                          tenant, a.s("mo"));
        std::string raw;
        Json v = must(t, c, &raw);
        if (a.json) fmt::print("{}\n", raw);
        else fmt::print("{}\n", v.str());
        return v.str() == "ok" ? 0 : 1;
    }
    if (cmd == "attach" || cmd == "detach") {
        const bool att = cmd == "attach";
        allow_only(a, cmd, att ? std::initializer_list<const char*>{"tenant", "mo", "mac", "port"}
                               : std::initializer_list<const char*>{"tenant", "mo", "withdraw"});
        static const std::vector<const char*> kAttachNeeds{"tenant", "mo", "mac", "port"}, kDetachNeeds{"tenant", "mo"};
        for (const char* k : att ? kAttachNeeds : kDetachNeeds)
            if (!a.has(k)) throw Usage(fmt::format("'{}' needs --{}", cmd, k));
        const unsigned long tenant = parse_number("--tenant", a.s("tenant"), lm::kMaxTenant);
        std::string c;
        if (att) {
            if (a.words.size() < 2) throw Usage("'attach' needs at least one EID");
            if (!lm::MacAddr::parse(a.s("mac"))) throw Usage(fmt::format("--mac: '{}' is not a MAC address", a.s("mac")));
            c = fmt::format("/lm/attach,{},{},{},{}", tenant, a.s("mo"), a.s("mac"), a.s("port"));
            for (size_t i = 1; i < a.words.size(); ++i) {
                if (!lm::IpAddr::parse(a.words[i])) throw Usage(fmt::format("attach: '{}' is not an IP address", a.words[i]));
                c += "," + a.words[i];
            }
        } else {
            expect_words(a, 1, cmd);
            c = fmt::format("/lm/detach,{},{}{}", tenant, a.s("mo"), a.has("withdraw") ? ",withdraw" : "");
        }
        std::string raw;
        Json v = must(t, c, &raw);
        if (a.json) fmt::print("{}\n", raw);
        else fmt::print("{}\n", v.str());
        return v.str() == "ok" ? 0 : 1;
    }
    if (cmd == "attached") {
        allow_only(a, cmd, {"page"});
        expect_words(a, 1, cmd);
        const Paged pg = fetch_pages(t, "/lm/attached", a);
        if (a.json) {
            print_json(pg.replies);
            return 0;
        }
        if (a.has("page")) fmt::print("{} MO(s) attached in {} page(s) of 64; page {}:\n", pg.total, pg.pages, pg.first);
        if (pg.entries.empty()) fmt::print("no MO attached\n");
        for (auto& s : pg.entries) fmt::print("{}\n", s);
        return 0;
    }
    throw Usage(fmt::format("unknown command '{}'", cmd));
}

void print_help(const po::options_description& opts) {
    fmt::print(
        "lmctl {}: operator's client for lm-router\n\n{}\n"
        "PKI (the LM domain's CA and the ARs' identities for the signed DHT records):\n"
        "  pki init  --dir DIR [--name NAME] [--days N] [--key-type T] [--force]\n"
        "            create DIR/ca.key (mode 0600) and DIR/ca.crt; default name 'LM domain CA', 3650 days\n"
        "  pki issue --dir DIR --name AR_NAME [--days N] [--key-type T] [--force]\n"
        "            issue DIR/AR_NAME.key (mode 0600) and DIR/AR_NAME.crt, signed by DIR's CA; 730 days\n"
        "            --key-type: ed25519, rsa2048, rsa3072 or rsa4096 (default: init ed25519, issue the CA's)\n\n"
        "Router queries (DPDK telemetry socket of a running lm-router):\n"
        "  info                       name, version, workers, UDP port, locators\n"
        "  stats [--worker N]         path counters (summed over workers, or worker N)\n"
        "  drops [--worker N] [--all] drop reasons with a non-zero count (--all: every reason)\n"
        "  ports                      ports and their rx/tx counters\n"
        "  mappings [--page N]        EID mappings (every page, or page N of 64 rows)\n"
        "  nexthop                    core next hop resolution\n"
        "  dht                        LM directory counters\n"
        "  resolve [--tenant T] EID   look EID up in the LM DHT (through the router's directory)\n"
        "  attached [--page N]        MOs attached here and their published records (pages of 64)\n"
        "  handover                   handover counters (attach detection, moves, notifications, hints)\n\n"
        "Router operations (what the orchestrator's hooks call; docs/operations.md, \"Handover\"):\n"
        "  attach --tenant T --mo ID --mac MAC --port PORT EID...\n"
        "                             attach an MO on an access port and publish its record\n"
        "  detach --tenant T --mo ID [--withdraw]\n"
        "                             detach it (--withdraw: the MO is gone, publish a tombstone)\n"
        "  migrate-begin --tenant T --mo ID   the MO is leaving: hold its packets until its new AR is known\n"
        "  migrate-abort --tenant T --mo ID   it stays: deliver the held packets\n"
        "  raw CMD                    send a telemetry command (e.g. /lm/stats,0) and print the JSON reply\n\n"
        "Exit status: 0 ok, 1 router unreachable or operation failed, 2 usage error.\n",
        LM_VERSION, (std::ostringstream() << opts).str());
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description opts("options");
    // Numbers are read as strings and checked here: Boost accepts "-1" for an unsigned.
    opts.add_options()
        ("help,h", "show this help")
        ("version", "print the version")
        ("file-prefix,f", po::value<std::string>()->value_name("PREFIX"), "router's EAL --file-prefix (default rte)")
        ("socket", po::value<std::string>()->value_name("PATH"), "telemetry socket path (instead of -f)")
        ("json", "print the router's JSON reply instead of a table")
        ("worker", po::value<std::string>()->value_name("N"), "stats/drops: one worker")
        ("all", "drops: also reasons with a zero count")
        ("page", po::value<std::string>()->value_name("N"), "mappings, attached: one page")
        ("tenant", po::value<std::string>()->value_name("T"), "resolve/attach/detach/migrate-*: tenant")
        ("mo", po::value<std::string>()->value_name("ID"), "attach/detach/migrate-*: MO id (decimal or 0x hex)")
        ("mac", po::value<std::string>()->value_name("MAC"), "attach: the MO's MAC")
        ("port", po::value<std::string>()->value_name("PORT"), "attach: access port name")
        ("withdraw", "detach: publish a tombstone (the MO is gone), not just stop refreshing (it moved)")
        ("dir", po::value<std::string>()->value_name("DIR"), "pki: directory of the CA and identities")
        ("name", po::value<std::string>()->value_name("NAME"), "pki init: CA name; pki issue: AR name (certificate CN)")
        ("days", po::value<std::string>()->value_name("N"), "pki: validity in days")
        ("key-type", po::value<std::string>()->value_name("T"), "pki: ed25519, rsa2048, rsa3072, rsa4096 (default: init ed25519, issue the CA's)")
        ("force", "pki: replace existing files");
    po::options_description hidden;
    hidden.add_options()("words", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("words", -1);

    Args a;
    try {
        try {
            po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), a.vm);
            po::notify(a.vm);
        } catch (const po::error& e) {
            throw Usage(e.what());
        }
        if (a.has("help")) {
            print_help(opts);
            return 0;
        }
        if (a.has("version")) {
            fmt::print("lmctl {}\n", LM_VERSION);
            return 0;
        }
        if (a.has("words")) a.words = a.vm["words"].as<std::vector<std::string>>();
        a.json = a.has("json");
        if (a.words.empty()) throw Usage("no command given");
        if (a.words[0] == "help") {
            print_help(opts);
            return 0;
        }
        if (a.words[0] == "pki") {
            if (a.has("file-prefix") || a.has("socket") || a.json) throw Usage("'pki' does not talk to a router: "
                                                                               "-f/--socket/--json do not apply");
            return cmd_pki(a);
        }
        static const char* kRouterCmds[] = {"info", "stats",   "drops",    "ports", "mappings",
                                            "nexthop", "dht", "attached", "resolve", "attach", "detach",
                                            "migrate-begin", "migrate-abort", "handover", "raw"};
        bool known = false;
        for (const char* c : kRouterCmds) known = known || a.words[0] == c;
        if (!known) throw Usage(fmt::format("unknown command '{}'", a.words[0]));
        if (a.has("file-prefix") && a.has("socket")) throw Usage("give either -f FILE_PREFIX or --socket PATH, not both");
        std::string path, hint;
        if (a.has("socket")) {
            path = a.s("socket");
            if (path.empty()) throw Usage("--socket: empty path");
            hint = " (is lm-router running, with telemetry on?)";
        } else {
            std::string prefix = a.has("file-prefix") ? a.s("file-prefix") : "rte";
            if (prefix.empty() || prefix.find('/') != std::string::npos)
                throw Usage(fmt::format("-f: '{}' is not a file prefix", prefix));
            path = socket_path_for_prefix(prefix);
            hint = fmt::format(" (is lm-router running with --file-prefix {} and without --no-telemetry?)", prefix);
        }
        Telemetry t(path, hint);
        return cmd_router(a, t);
    } catch (const Usage& e) {
        fmt::print(stderr, "lmctl: {}\n{}", e.what(), kUsage);
        return 2;
    } catch (const Failure& e) {
        fmt::print(stderr, "lmctl: {}\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "lmctl: {}\n", e.what());
        return 1;
    }
}
