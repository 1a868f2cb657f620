// rte_telemetry commands under /lm/... so dpdk-telemetry.py reads the router unchanged.
// Callbacks run on DPDK's telemetry thread: they read atomic counters and the control plane's
// mutex-guarded snapshots, never a worker's tables.
#pragma once

#include "controlplane/control_plane.hpp"

namespace lm {

inline constexpr unsigned kTelemetryPageSize = 64;  // keeps replies well under the 16 KiB limit

void telemetry_register(ControlPlane* cp);
void telemetry_unregister();  // callbacks answer "not running" afterwards

}  // namespace lm
