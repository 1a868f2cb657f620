// The per-worker locator cache and attachment table. Owned and written by one worker only:
// the control lcore never touches them, it sends UpdateMsg over the worker's ring instead.
// Both are FlatTables (dataplane/flat_table.hpp): exactly `entries` keys fit, a bulk lookup
// costs a bucket line, then the key and the value line together.
#pragma once

#include <cstdint>
#include <string>

#include "common/ring_msg.hpp"
#include "dataplane/flat_table.hpp"

namespace lm {

// EID -> MappingValue (encap: where the MO is).
class LocatorCache : public FlatTable<EidKey, MappingValue> {
public:
    using FlatTable::FlatTable;
};

// (tenant, MO id), 16 bytes.
struct AttachKey {
    uint32_t tenant;
    uint32_t pad;
    uint64_t mo_id;
    static AttachKey make(TenantId t, MoId m) { return {t, 0, m}; }
};
static_assert(sizeof(AttachKey) == 16);

// What decap needs about an MO attached here, in one 64-byte line (read once per packet).
struct alignas(64) Attachment {
    uint8_t port_index = 0;                    // Deliver: access port
    AttachState state = AttachState::Deliver;
    MacAddr mac;                               // Deliver: the MO's MAC
    Epoch epoch = 0;                           // current epoch here: older senders get a hint
    Epoch fwd_epoch = 0;                       // Forward: epoch written into forwarded packets
    IpAddr fwd_locator;                        // Forward: the MO's new AR
};
static_assert(sizeof(Attachment) == 64);

// (tenant, MO id) -> where the MO sits on this AR and what to do with its packets. Used by decap.
class AttachmentTable : public FlatTable<AttachKey, Attachment> {
public:
    using FlatTable::FlatTable;
};

}  // namespace lm
