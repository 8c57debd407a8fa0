// `kfac train --nproc N`: start N local ranks of this program and supervise them.
#pragma once

namespace kfac::tool {

/// Runs this executable (`argv` unchanged) as `ranks` child processes with RANK, LOCAL_RANK, WORLD_SIZE,
/// MASTER_ADDR=127.0.0.1 and MASTER_PORT (`port`, or a free one when 0) set, and waits for them. When a rank fails,
/// the others are given `timeout_s` + 5 s to stop on their own (their collectives fail within the timeout), then
/// killed. Returns 0 if every rank succeeded, else the first failing rank's exit code (128 + signal if killed).
int launch_local_ranks(int ranks, int port, double timeout_s, char** argv);

}  // namespace kfac::tool
