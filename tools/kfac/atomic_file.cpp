#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace kfac::tool {

namespace fs = std::filesystem;

namespace {

std::string g_test_sink;  // redirect_writes_for_test

// Where the bytes of a write go instead of the temporary file: the tests' sink, or /dev/full for the CLI tests.
std::string test_sink() {
  if (!g_test_sink.empty()) return g_test_sink;
  const char* full = std::getenv("KFAC_TEST_DISK_FULL");
  return full != nullptr && std::string(full) == "1" ? "/dev/full" : "";
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a fifo (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

// The file a write to a path replaces or creates.
struct Target {
  std::string file;  ///< the path itself, or the regular file its symbolic link names
  bool exists = false;
  mode_t permissions = 0;  ///< the existing file's, kept by its replacement
};

// Resolves `path`, refusing anything that is not a regular file (or a link to one); `who` names it in messages.
Target resolve(const std::string& path, const std::string& who) {
  struct stat entry {};
  if (lstat(path.c_str(), &entry) != 0) {
    if (errno == ENOENT) return {path, false, 0};  // a new file (a missing folder is found when it is created)
    throw OutputError("cannot write " + who + " (" + std::strerror(errno) + ")");
  }
  if (S_ISLNK(entry.st_mode)) {
    std::error_code ec;
    const auto file = fs::canonical(path, ec);
    struct stat named {};
    if (ec || stat(file.c_str(), &named) != 0)
      throw OutputError(who + " is a symbolic link that names no file (" + ec.message() + "); give a file name");
    if (!S_ISREG(named.st_mode))
      throw OutputError(who + " is a symbolic link to " + kind_of(named.st_mode) + " (" + quoted(file.string()) +
                        "), not a regular file; give a file name");
    return {file.string(), true, named.st_mode & 07777};
  }
  if (!S_ISREG(entry.st_mode))
    throw OutputError(who + " is " + kind_of(entry.st_mode) + ", not a regular file; give a file name");
  return {path, true, entry.st_mode & 07777};
}

// Creates `tmp` new, for writing. A regular file there is a leftover of an interrupted write and is removed; anything
// else there is refused (O_EXCL: the new file is never opened through a link someone left in its place).
int create_temporary(const std::string& tmp, const std::string& who) {
  struct stat entry {};
  if (lstat(tmp.c_str(), &entry) == 0) {
    if (!S_ISREG(entry.st_mode))
      throw OutputError("cannot write " + who + ": its temporary file " + quoted(tmp) + " is " +
                        kind_of(entry.st_mode) + "; remove it");
    unlink(tmp.c_str());
  }
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    throw OutputError("cannot write " + who + " (" + std::strerror(errno) +
                      "); check that its folder exists and is writable");
  return fd;
}

// 0, or the errno of the first failed write(2).
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// The rename is durable once the folder's entry is on disk; best effort (some filesystems refuse a folder's fsync,
// and the file's own contents were synced and checked already).
void sync_folder(const std::string& file) {
  const auto folder = fs::path(file).parent_path();
  const int fd = open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  const int synced = fsync(fd);
  static_cast<void>(synced);
  close(fd);
}

// The same file, as far as the file system can tell before either exists: absolute, links and ".." resolved.
std::string identity(const std::string& path) {
  std::error_code ec;
  const auto p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? path : p.string();
}

}  // namespace

void check_output_path(const std::string& path, const std::string& option, bool allow_stdout) {
  if (path.empty()) return;
  const std::string who = option + " " + quoted(path);
  if (path == "-") {
    if (allow_stdout) return;
    throw OutputError(option + " cannot be standard output ('-'); give a file name");
  }
  const auto target = resolve(path, who);
  // The probe: the folder exists and takes a new file (what each write creates first).
  const std::string tmp = target.file + ".tmp";
  close(create_temporary(tmp, who));
  unlink(tmp.c_str());
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      const auto& [a, a_path] = outputs[i];
      const auto& [b, b_path] = outputs[j];
      if (a_path.empty() || b_path.empty() || a_path == "-" || b_path == "-") continue;
      const auto x = identity(a_path), y = identity(b_path);
      if (x != y && x + ".tmp" != y && y + ".tmp" != x) continue;  // else one written over the other, or its .tmp
      std::ostringstream message;
      message << a << " '" << a_path << "' and " << b << " '" << b_path << "' name the same file; give each its own";
      throw OutputError(message.str());
    }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string who = quoted(path);
  const auto target = resolve(path, who);
  const std::string tmp = target.file + ".tmp";
  const int fd = create_temporary(tmp, who);
  int error = 0;
  if (target.exists && fchmod(fd, target.permissions) != 0) error = errno;
  const auto sink = test_sink();
  const int out = sink.empty() ? fd : open(sink.c_str(), O_WRONLY | O_CLOEXEC);
  if (!error && out < 0) error = errno;
  if (!error) error = write_all(out, bytes);
  // A full disk or a failing device may report only here: the data reach the disk at fsync (or close, on NFS).
  if (!error && fsync(out) != 0) error = errno;
  if (out >= 0 && out != fd && close(out) != 0 && !error) error = errno;
  if (close(fd) != 0 && !error) error = errno;
  std::string refused;
  if (!error) {
    try {  // the destination may have changed since the run started: still a regular file, still the same one?
      if (resolve(path, who).file != target.file) refused = who + " now names another file; not replacing it";
    } catch (const OutputError& e) {
      refused = e.what();
    }
  }
  if (!error && refused.empty() && std::rename(tmp.c_str(), target.file.c_str()) != 0) error = errno;
  if (error || !refused.empty()) {
    unlink(tmp.c_str());
    if (!refused.empty()) throw OutputError(refused);
    throw OutputError("cannot write " + who + " (" + std::strerror(error) + "); " +
                      (target.exists ? who + " keeps its previous contents" : std::string("nothing was written")));
  }
  sync_folder(target.file);
}

void write_output(const std::string& path, std::string_view bytes) {
  if (path != "-") return write_file_atomically(path, bytes);
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    throw OutputError(std::string("cannot write to standard output (") + std::strerror(errno) + ")");
}

void redirect_writes_for_test(const std::string& sink) { g_test_sink = sink; }

}  // namespace kfac::tool
