// The tool's file writer (tools/kfac/atomic_file.h): only regular files are replaced, a write is all or nothing, and
// a full disk (writes redirected to /dev/full, which fail with ENOSPC) is an error naming the file that leaves the
// previous contents and no temporary file behind. Devices are never written here: fifos, folders and links to them in
// a temporary folder stand for them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../tools/kfac/atomic_file.h"

namespace {

namespace fs = std::filesystem;
using kfac::tool::check_distinct_outputs;
using kfac::tool::check_output_path;
using kfac::tool::OutputError;
using kfac::tool::redirect_writes_for_test;
using kfac::tool::write_file_atomically;
using ::testing::HasSubstr;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "kfac_atomic_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    redirect_writes_for_test("");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string read(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // The message of the OutputError `f` throws ("" if none).
  template <class F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const OutputError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(AtomicFile, WritesReplacesAndKeepsPermissions) {
  const auto file = path("run.json");
  write_file_atomically(file, "first");
  EXPECT_EQ(read(file), "first");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  write_file_atomically(file, "second");
  EXPECT_EQ(read(file), "second");
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  EXPECT_NO_THROW(check_output_path(file, "--metrics-json"));
}

TEST_F(AtomicFile, RefusesWhatIsNotARegularFileAndLeavesItAlone) {
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  fs::create_directory(path("folder"));
  fs::create_symlink(path("fifo"), path("to_fifo"));
  fs::create_symlink(path("folder"), path("to_folder"));
  fs::create_symlink(path("nothing"), path("dangling"));
  const struct {
    std::string name, message;
  } cases[] = {{"fifo", "is a fifo (named pipe), not a regular file; give a file name"},
               {"folder", "is a directory, not a regular file"},
               {"to_fifo", "is a symbolic link to a fifo (named pipe) ('" + path("fifo") + "'), not a regular file"},
               {"to_folder", "is a symbolic link to a directory"},
               {"dangling", "is a symbolic link that names no file"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto target = path(c.name);
    EXPECT_THAT(error_of([&] { check_output_path(target, "--checkpoint"); }),
                HasSubstr("--checkpoint '" + target + "' " + c.message));
    EXPECT_THAT(error_of([&] { write_file_atomically(target, "bytes"); }), HasSubstr("'" + target + "' " + c.message));
    EXPECT_FALSE(fs::exists(target + ".tmp"));
  }
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(path("fifo"))));
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(path("to_fifo"))));
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(path("folder"))));
  EXPECT_TRUE(fs::is_empty(path("folder")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(path("nothing"))));
}

TEST_F(AtomicFile, FollowsALinkToARegularFile) {
  write_file_atomically(path("real.pt"), "old");
  fs::create_symlink(path("real.pt"), path("link.pt"));
  EXPECT_NO_THROW(check_output_path(path("link.pt"), "--checkpoint"));
  write_file_atomically(path("link.pt"), "new");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(path("link.pt"))));
  EXPECT_EQ(read(path("real.pt")), "new");
}

TEST_F(AtomicFile, AMissingFolderIsRefusedBeforeAnyWrite) {
  const auto file = path("missing/run.pt");
  EXPECT_THAT(error_of([&] { check_output_path(file, "--checkpoint"); }),
              HasSubstr("cannot write --checkpoint '" + file + "' (No such file or directory); check that"));
  EXPECT_FALSE(fs::exists(path("missing")));
}

TEST_F(AtomicFile, ATemporaryFileInTheWay) {
  const auto file = path("run.pt");
  write_file_atomically(file + ".tmp", "a leftover of an interrupted write");
  write_file_atomically(file, "bytes");  // replaces the leftover and renames it
  EXPECT_EQ(read(file), "bytes");
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  ASSERT_EQ(mkfifo((file + ".tmp").c_str(), 0600), 0);  // never written through
  EXPECT_THAT(error_of([&] { write_file_atomically(file, "other"); }),
              HasSubstr("its temporary file '" + file + ".tmp' is a fifo (named pipe); remove it"));
  EXPECT_EQ(read(file), "bytes");
}

TEST_F(AtomicFile, AFullDiskKeepsThePreviousFileAndLeavesNoTemporary) {
  const auto file = path("run.pt");
  write_file_atomically(file, "the last good checkpoint");
  redirect_writes_for_test("/dev/full");
  EXPECT_THAT(error_of([&] { write_file_atomically(file, std::string(1 << 20, 'x')); }),
              HasSubstr("cannot write '" + file + "' (No space left on device); '" + file +
                        "' keeps its previous contents"));
  EXPECT_THAT(error_of([&] { write_file_atomically(path("new.json"), "{}"); }),
              HasSubstr("(No space left on device); nothing was written"));
  redirect_writes_for_test("");
  EXPECT_EQ(read(file), "the last good checkpoint");
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  EXPECT_FALSE(fs::exists(path("new.json")));
  EXPECT_FALSE(fs::exists(path("new.json.tmp")));
}

TEST_F(AtomicFile, TwoOutputsNamingOneFileAreRefused) {
  const auto file = path("run.pt");
  write_file_atomically(file, "checkpoint");
  fs::create_symlink(file, path("alias.pt"));
  for (const auto& other : {file, path("./run.pt"), path("alias.pt"), file + ".tmp"}) {
    SCOPED_TRACE(other);
    EXPECT_THAT(error_of([&] {
                  check_distinct_outputs({{"--checkpoint", file}, {"--metrics-json", other}});
                }),
                HasSubstr("--checkpoint '" + file + "' and --metrics-json '" + other + "' name the same file"));
  }
  EXPECT_NO_THROW(check_distinct_outputs({{"--checkpoint", file}, {"--metrics-json", path("run.json")}}));
  EXPECT_NO_THROW(check_distinct_outputs({{"--checkpoint", ""}, {"--metrics-json", ""}}));
}

TEST_F(AtomicFile, StandardOutputOnlyWhereOffered) {
  EXPECT_NO_THROW(check_output_path("-", "--metrics-json", /*allow_stdout=*/true));
  EXPECT_THAT(error_of([] { check_output_path("-", "--checkpoint"); }),
              HasSubstr("--checkpoint cannot be standard output ('-')"));
}

}  // namespace
