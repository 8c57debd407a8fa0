// Every file the tool writes goes through here: run checkpoints, the metrics JSON, and the compare report (per-run
// JSON and CSV, the gnuplot script, summary.md, runtime.json; gnuplot's own outputs are checked by path).
//
//   * Only regular files are replaced. A destination that exists and is anything else (a device such as /dev/null, a
//     directory, a fifo, a socket, or a symbolic link to one of these or to nothing) is refused, naming the option
//     and the path: before any work by check_output_path, and again at the write. A symbolic link to a regular file
//     is followed: the file it names is replaced and the link stays.
//   * A write is all or nothing: the bytes go to PATH.tmp, created new (O_EXCL, never through a link), written,
//     fsync'ed and closed, every call checked, then renamed over PATH. On any failure (a full disk: "No space left on
//     device") the .tmp is removed, PATH keeps what it held, and OutputError names PATH and the reason.
//
// Free of LibTorch, so the unit tests (tests/tool/atomic_file_test.cpp) run it alone.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kfac::tool {

struct OutputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Before training: refuses a `path` (given by `option`, e.g. "--checkpoint") that exists and is not a regular file
/// or a link to one, and one that cannot be created (a missing or read-only folder: probed by creating and removing
/// PATH.tmp). With `allow_stdout`, "-" (standard output) is accepted.
void check_output_path(const std::string& path, const std::string& option, bool allow_stdout = false);

/// Refuses two outputs that name the same file, e.g. --checkpoint and --metrics-json (after following links).
/// Each entry is (option, path); empty paths and "-" are ignored.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

/// Writes `bytes` to `path` atomically (see above); throws OutputError naming `path` on any failure.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// write_file_atomically, or with `path` "-" the bytes to standard output (flushed and checked).
void write_output(const std::string& path, std::string_view bytes);

/// The fault-injection seam of the tests: while set, the bytes of every write go to `sink` (e.g. /dev/full, whose
/// writes fail with ENOSPC) instead of the temporary file, which is still created, cleaned up, and never renamed
/// unless every write succeeded. "" restores normal writes. The tool sets "/dev/full" when KFAC_TEST_DISK_FULL=1.
void redirect_writes_for_test(const std::string& sink);

}  // namespace kfac::tool
