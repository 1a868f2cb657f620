// dht-rogue-publisher: an attacker's DHT node for the e2e trust test (test/e2e/test_dht_resolution.py).
//
// It joins the LM DHT (same OpenDHT network id, value type, keys and msgpack envelope as dht/)
// with an identity that does NOT chain to the operator's domain CA, and publishes forged LM
// records: an MO's EIDs/MAC pointing to a rogue locator, with a huge epoch. Honest ARs must
// reject them (rejected_forged / rejected_unsigned / store_edit_refused) and keep forwarding to the
// real locator.
//
// Modes of attack (one per run):
//   default        a record signed by a rogue identity: a fresh rogue CA + an identity with CN
//                  --name (default "ar2", impersonating an honest AR), published with
//                  lm::dir::Directory::publish() exactly as an AR does (honest readers:
//                  UntrustedSigner, counted in rejected_forged)
//   --self-signed  same with a self-signed certificate (CN --name)
//   --identity K,C load the rogue identity from PEM files (e.g. issued by a CA made with pki-init)
//   --unsigned     raw put of an envelope with the record but no signature and no certificate
//                  (readers: rejected_unsigned)
//   --steal-slot CERT  raw put of the rogue-signed record into the live value slot of the AR
//                  whose certificate is CERT: the value id is that of one publication (publisher
//                  key + epoch, dht/record.hpp), so the rogue first gets each key's values and
//                  takes the id of the newest-epoch value whose envelope carries CERT's key
//                  (checked against value_id_for(key, epoch)); keys without such a value are
//                  skipped (stderr). Storage nodes holding that value refuse the edit
//                  (store_edit_refused)
// Options --republish-ms N publishes again every N ms with a new (still huge) epoch, so the
// watch path (listen) sees fresh forged values while the program runs.
//
// PKI helpers (so tests do not depend on lmctl):
//   dht-rogue-publisher --pki-init DIR [--ca-name NAME]   -> DIR/ca.key, DIR/ca.crt
//   dht-rogue-publisher --pki-issue DIR --name ar1        -> DIR/ar1.key, DIR/ar1.crt (signed by DIR/ca.*)
//
// Output (stdout, one JSON object per line): {"published":...} per record and round; then
// {"stored":true|false,...} when the puts completed (signed: one per record, from the directory's
// Published event; raw modes: one per round). "stored" means acknowledged: OpenDHT acknowledges
// a put even when the storage node's edit policy refused it. {"done":...} at exit.
// Exit status: 0 after --seconds N; 1 on a usage or runtime error.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>
#include <opendht/dhtrunner.h>

#include "dht/directory.hpp"
#include "dht/hlc.hpp"
#include "dht/pki.hpp"
#include "dht/record.hpp"
#include "dht/trust.hpp"

namespace po = boost::program_options;
using namespace lm;
using namespace lm::dir;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "dht-rogue-publisher: %s\n", msg.c_str());
    std::exit(1);
}

uint64_t parse_u64(const std::string& s, const char* what) {
    try {
        size_t pos = 0;
        uint64_t v = std::stoull(s, &pos, 0);
        if (pos != s.size()) throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        die(std::string("bad ") + what + ": '" + s + "'");
    }
}

IpAddr parse_ip(const std::string& s) {
    auto a = IpAddr::parse(s);
    if (!a) die("bad IP address '" + s + "'");
    return *a;
}

// "TENANT MO MAC EID[,EID...]"
Record parse_record_spec(const std::string& spec) {
    std::istringstream in(spec);
    std::string t, mo, mac, eids;
    if (!(in >> t >> mo >> mac >> eids)) die("--record needs 'TENANT MO_ID MAC EID[,EID...]', got '" + spec + "'");
    Record r;
    r.tenant = TenantId(parse_u64(t, "tenant"));
    r.mo = parse_u64(mo, "MO id");
    auto m = MacAddr::parse(mac);
    if (!m) die("bad MAC '" + mac + "'");
    r.mac = *m;
    std::stringstream es(eids);
    for (std::string e; std::getline(es, e, ',');)
        if (!e.empty()) r.eids.push_back(parse_ip(e));
    if (r.eids.empty()) die("--record needs at least one EID");
    return r;
}

std::string json_str(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o + "\"";
}

std::string record_json(const Record& r) {
    std::string eids;
    for (auto& e : r.eids) eids += (eids.empty() ? "" : ",") + json_str(e.str());
    std::string locs;
    if (r.loc4) locs += json_str(r.loc4->str());
    if (r.loc6) locs += (locs.empty() ? "" : ",") + json_str(r.loc6->str());
    return "{\"tenant\":" + std::to_string(r.tenant) + ",\"mo\":" + std::to_string(r.mo) + ",\"mac\":" +
           json_str(r.mac.str()) + ",\"eids\":[" + eids + "],\"locators\":[" + locs + "],\"epoch\":" +
           std::to_string(r.epoch) + ",\"publisher\":" + json_str(r.publisher) + "}";
}

void emit(const std::string& line) {
    std::fprintf(stdout, "%s\n", line.c_str());
    std::fflush(stdout);
}

int pki_init(const std::string& dir, const std::string& ca_name) {
    ::mkdir(dir.c_str(), 0700);
    auto ca = create_domain_ca(ca_name);
    save_identity(ca, dir + "/ca.key", dir + "/ca.crt");
    emit("{\"ca\":" + json_str(dir + "/ca.crt") + ",\"name\":" + json_str(ca_name) + "}");
    return 0;
}

int pki_issue(const std::string& dir, const std::string& name) {
    auto ca = load_identity(dir + "/ca.key", dir + "/ca.crt");
    auto id = issue_ar_identity(ca, name);
    save_identity(id, dir + "/" + name + ".key", dir + "/" + name + ".crt");
    emit("{\"key\":" + json_str(dir + "/" + name + ".key") + ",\"cert\":" + json_str(dir + "/" + name + ".crt") +
         ",\"name\":" + json_str(name) + "}");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    po::options_description desc(
        "dht-rogue-publisher: joins the LM DHT with an untrusted identity and publishes forged LM records\n"
        "(test tool; see the comment at the top of test/dht/rogue_publisher.cpp)");
    std::vector<std::string> bootstrap, eids, locators, records;
    std::string bind4, name, mac, identity, steal_cert, pki_init_dir, pki_issue_dir, ca_name, epoch_s;
    uint64_t tenant = 1;
    uint16_t port = 4222;
    double seconds = 10;
    unsigned republish_ms = 0;
    long peer_rate = 0;
    desc.add_options()
        ("help,h", "this help")
        ("bind", po::value(&bind4)->default_value("0.0.0.0"), "IPv4 address to bind the DHT node to")
        ("port", po::value(&port)->default_value(4222), "UDP port of the DHT node (0: any)")
        ("bootstrap", po::value(&bootstrap)->composing(), "ADDR:PORT of an LM DHT node (repeatable)")
        ("tenant", po::value(&tenant)->default_value(1), "tenant of the forged record")
        ("eid", po::value(&eids)->composing(), "EID of the forged record (repeatable)")
        ("mo", po::value<std::string>(), "MO id of the forged record (decimal or 0x...)")
        ("mac", po::value(&mac), "MAC of the forged record")
        ("record", po::value(&records)->composing(),
         "another forged record: 'TENANT MO_ID MAC EID[,EID...]' (repeatable)")
        ("locator", po::value(&locators)->composing(),
         "rogue locator(s) the forged record points to (one IPv4 and/or one IPv6; default 198.51.100.99)")
        ("epoch", po::value(&epoch_s),
         "epoch of the forged record (default: huge, (now + 10 years) in HLC form)")
        ("name", po::value(&name)->default_value("ar2"), "CN of the rogue identity (impersonated AR name)")
        ("self-signed", "rogue identity: a self-signed certificate instead of one from a rogue CA")
        ("identity", po::value(&identity), "rogue identity from PEM files KEY,CERT")
        ("unsigned", "raw put of an unsigned envelope instead of a signed record")
        ("steal-slot", po::value(&steal_cert), "raw put into the value slot of the AR whose certificate is this PEM")
        ("republish-ms", po::value(&republish_ms)->default_value(0), "publish again every N ms (new epoch)")
        ("seconds", po::value(&seconds)->default_value(10), "stay up this long, then exit 0")
        ("max-peer-req-per-sec", po::value(&peer_rate)->default_value(0), "OpenDHT per-peer limit (-1: none)")
        ("pki-init", po::value(&pki_init_dir), "create a domain CA in DIR (ca.key, ca.crt) and exit")
        ("ca-name", po::value(&ca_name)->default_value("lm-domain-ca"), "CN of the CA for --pki-init")
        ("pki-issue", po::value(&pki_issue_dir), "issue DIR/<--name>.key/.crt from DIR/ca.* and exit");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        die(std::string(e.what()) + " (--help for usage)");
    }
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    try {
        if (!pki_init_dir.empty()) return pki_init(pki_init_dir, ca_name);
        if (!pki_issue_dir.empty()) return pki_issue(pki_issue_dir, name);

        // ---- the forged records ----
        std::vector<Record> recs;
        if (!eids.empty() || vm.count("mo") || !mac.empty()) {
            if (eids.empty() || !vm.count("mo") || mac.empty()) die("--eid, --mo and --mac go together");
            Record r;
            r.tenant = TenantId(tenant);
            r.mo = parse_u64(vm["mo"].as<std::string>(), "MO id");
            auto m = MacAddr::parse(mac);
            if (!m) die("bad MAC '" + mac + "'");
            r.mac = *m;
            for (auto& e : eids) r.eids.push_back(parse_ip(e));
            recs.push_back(r);
        }
        for (auto& s : records) recs.push_back(parse_record_spec(s));
        if (recs.empty()) die("nothing to publish: give --eid/--mo/--mac or --record");
        if (locators.empty()) locators.push_back("198.51.100.99");
        std::optional<IpAddr> loc4, loc6;
        for (auto& l : locators) {
            IpAddr a = parse_ip(l);
            (a.is_v4() ? loc4 : loc6) = a;
        }
        const uint64_t ten_years_ms = 10ULL * 365 * 24 * 3600 * 1000;
        Epoch epoch = epoch_s.empty() ? Hlc::from_ms(unix_ms_now() + ten_years_ms) : parse_u64(epoch_s, "epoch");
        for (auto& r : recs) {
            if (r.tenant > kMaxTenant) die("tenant exceeds 24 bits");
            r.loc4 = loc4;
            r.loc6 = loc6;
        }

        // ---- the rogue identity and the node ----
        const bool raw_unsigned = vm.count("unsigned") != 0;
        ::dht::crypto::Identity rogue_ca, id;
        if (!identity.empty()) {
            auto comma = identity.find(',');
            if (comma == std::string::npos) die("--identity needs KEY,CERT");
            id = load_identity(identity.substr(0, comma), identity.substr(comma + 1));
            rogue_ca = {nullptr, id.second};  // trust anchor of the rogue node itself: irrelevant
        } else if (vm.count("self-signed")) {
            id = ::dht::crypto::generateIdentity(name, {}, kDefaultRsaBits, false);
            rogue_ca = {nullptr, id.second};
        } else {
            rogue_ca = create_domain_ca("rogue-ca");
            id = issue_ar_identity(rogue_ca, name);
        }
        // Raw puts report here (from OpenDHT's thread): declared before the node, which joins
        // OpenDHT's thread when it goes.
        std::atomic<unsigned> raw_ok{0}, raw_failed{0};
        unsigned raw_puts = 0, raw_reported = 0;
        DhtConfig cfg;
        cfg.port = port;
        cfg.bind4 = bind4;
        cfg.bootstrap = bootstrap;
        cfg.max_peer_req_per_sec = peer_rate;
        Directory node(cfg, rogue_ca.second, id);
        Signer signer(id);
        std::fprintf(stderr, "dht-rogue-publisher: node %s:%u, identity CN=%s (%s), %zu bootstrap node(s)\n",
                     bind4.c_str(), unsigned(node.bound_port()), name.c_str(),
                     !identity.empty() ? "from files" : vm.count("self-signed") ? "self-signed" : "rogue CA",
                     bootstrap.size());

        ::signal(SIGTERM, on_signal);
        ::signal(SIGINT, on_signal);

        std::string mode = raw_unsigned ? "unsigned" : !steal_cert.empty() ? "steal-slot" : "signed";
        ::dht::InfoHash victim;
        if (!steal_cert.empty()) victim = load_certificate(steal_cert)->getId();
        // The victim's live slot under key k: the id of its newest-epoch value there (0: none).
        auto victim_slot = [&](const ::dht::InfoHash& k) -> uint64_t {
            auto f = node.runner().get(k, ::dht::Value::TypeFilter(kLmValueType));
            if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return 0;
            uint64_t id = 0;
            Epoch best = 0;
            for (const auto& v : f.get()) {
                if (!v) continue;
                auto env = decode_envelope(v->data);
                if (!env || env->cert.empty()) continue;
                auto rec = decode_record(env->rec);
                if (!rec) continue;
                try {
                    if (::dht::crypto::Certificate(env->cert).getId() != victim) continue;
                } catch (const std::exception&) {
                    continue;
                }
                if (v->id != value_id_for(victim, rec->epoch))
                    std::fprintf(stderr, "dht-rogue-publisher: value %016llx of the victim under %s: not its "
                                 "(key, epoch) id\n", (unsigned long long)v->id, k.toString().c_str());
                if (id == 0 || rec->epoch > best) {
                    id = v->id;
                    best = rec->epoch;
                }
            }
            return id;
        };

        unsigned rounds = 0;
        auto publish_all = [&] {
            for (auto& r : recs) {
                Record x = r;
                x.epoch = epoch + rounds;  // a new epoch every round, always huge
                if (mode == "signed") {
                    node.publish(x);
                    x.publisher = signer.name();
                } else {
                    x.publisher = signer.name();
                    x.expiry_ms = unix_ms_now() + 600'000;
                    Envelope env;
                    if (mode == "unsigned") {
                        env.rec = encode_record(x);  // no sig, no cert
                    } else {
                        env = signer.sign(x);
                    }
                    auto data = encode_envelope(env);
                    for (const auto& k : record_keys(x)) {
                        uint64_t vid = signer.value_id(x.epoch);
                        if (mode == "steal-slot") {
                            vid = victim_slot(k);
                            if (vid == 0) {
                                std::fprintf(stderr, "dht-rogue-publisher: no value of the victim under %s: skipped\n",
                                             k.toString().c_str());
                                continue;
                            }
                        }
                        ++raw_puts;
                        auto v = std::make_shared<::dht::Value>(kLmValueType, data, vid);
                        node.runner().put(k, v, ::dht::DoneCallbackSimple([&raw_ok, &raw_failed](bool ok) {
                                              (ok ? raw_ok : raw_failed)++;
                                          }));
                    }
                }
                emit("{\"published\":" + record_json(x) + ",\"mode\":" + json_str(mode) + ",\"round\":" +
                     std::to_string(rounds) + "}");
            }
            ++rounds;
        };

        const auto t0 = std::chrono::steady_clock::now();
        const auto end = t0 + std::chrono::milliseconds(uint64_t(seconds * 1000));
        auto next_round = t0;
        unsigned acked = 0, nacked = 0;
        while (!g_stop && std::chrono::steady_clock::now() < end) {
            if (std::chrono::steady_clock::now() >= next_round && (rounds == 0 || republish_ms)) {
                publish_all();
                next_round = std::chrono::steady_clock::now() + std::chrono::milliseconds(republish_ms);
            }
            node.wait(std::chrono::milliseconds(20));
            // Raw puts: one line when every put issued so far has completed. (A storage node that
            // refuses an edit still acknowledges the put: "stored" only means "acknowledged".)
            if (raw_puts && raw_reported != raw_puts && raw_ok + raw_failed == raw_puts) {
                raw_reported = raw_puts;
                emit("{\"stored\":" + std::string(raw_failed ? "false" : "true") + ",\"raw_puts\":" +
                     std::to_string(raw_puts) + ",\"acked\":" + std::to_string(raw_ok.load()) + "}");
            }
            node.poll([&](Event&& ev) {
                if (ev.type != Event::Type::Published) return;
                (ev.ok ? acked : nacked)++;
                emit("{\"stored\":" + std::string(ev.ok ? "true" : "false") + ",\"mo\":" + std::to_string(ev.cookie) +
                     ",\"epoch\":" + std::to_string(ev.record.epoch) + "}");
            });
        }
        auto c = node.counters();
        emit("{\"done\":true,\"rounds\":" + std::to_string(rounds) + ",\"mode\":" + json_str(mode) +
             ",\"stored\":" + std::to_string(mode == "signed" ? acked : raw_ok.load()) +
             ",\"failed\":" + std::to_string(mode == "signed" ? nacked : raw_failed.load()) +
             ",\"known_nodes\":" + std::to_string(node.known_nodes()) +
             ",\"store_edit_refused\":" + std::to_string(c.store_edit_refused) + "}");
        node.stop();
        return 0;
    } catch (const std::exception& e) {
        die(e.what());
    }
}
