// AtomicFile: an output appears complete or not at all, and a failure names its reason.
// Failures are provoked for real: a missing folder, permission denied (a child that drops root,
// and a read-only tmpfs), no space left (a 64 KiB tmpfs) and a file-size limit (RLIMIT_FSIZE
// with SIGXFSZ ignored). Mounts happen in a child's private mount namespace, so nothing leaks.
#include "litelens/atomic_file.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>

#include "hardening_support.h"

namespace litelens::hardening {
namespace {

class atomic_file_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("litelens-atomic-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static std::vector<std::string> entries(const fs::path& d) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

// Runs `body` in a child; returns the failures it reports (see run_sandboxed).
std::vector<std::string> in_child(const std::function<void(std::vector<std::string>&)>& body) {
  return run_sandboxed([&](std::vector<std::string>& f, char*) { body(f); }, 60, 1L << 30).failures;
}

// Expects `fn` to throw Error(output) naming `target` with `reason` in its message.
void expect_output_error(std::vector<std::string>& failures, const fs::path& target, const std::string& reason,
                         const std::function<void()>& fn) {
  try {
    fn();
    failures.push_back("no error; expected '" + reason + "'");
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::output) failures.push_back(std::string("kind ") + std::string(error_kind_name(e.kind())));
    if (e.label() != target.string()) failures.push_back("label " + e.label() + ", expected " + target.string());
    if (e.message().find(reason) == std::string::npos) failures.push_back("message '" + e.message() + "' lacks '" + reason + "'");
  } catch (const std::exception& e) {
    failures.push_back(std::string("unexpected exception: ") + e.what());
  }
}

// A private mount namespace with a tmpfs at `where`; false when this machine does not allow it.
bool private_tmpfs(const fs::path& where, const char* options) {
  if (::unshare(CLONE_NEWNS) != 0) return false;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  return ::mount("tmpfs", where.c_str(), "tmpfs", 0, options) == 0;
}

const std::string kMiB(1 << 20, 'x');

TEST_F(atomic_file_test, writes_and_commits) {
  const auto target = dir_ / "out.bin";
  AtomicFile f(target);
  EXPECT_EQ(f.temp_path().parent_path(), dir_);
  EXPECT_TRUE(fs::exists(f.temp_path()));
  EXPECT_FALSE(fs::exists(target));
  f.write("hello ");
  f.write(std::as_bytes(std::span<const char>("world", 5)));
  EXPECT_EQ(f.size(), 11u);
  EXPECT_FALSE(fs::exists(target)) << "the target must not appear before commit()";
  f.commit();
  EXPECT_TRUE(f.committed());
  EXPECT_EQ(slurp(target), "hello world");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.bin"});
  EXPECT_THROW(f.commit(), std::logic_error);
  EXPECT_THROW(f.write("more"), std::logic_error);
}

TEST_F(atomic_file_test, replaces_existing_file_only_on_commit) {
  const auto target = dir_ / "model.npz";
  std::ofstream(target) << "old contents";
  {
    AtomicFile f(target);
    f.write(kMiB);
    EXPECT_EQ(slurp(target), "old contents");
    f.commit();
  }
  EXPECT_EQ(slurp(target), kMiB);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"model.npz"});
}

TEST_F(atomic_file_test, uncommitted_file_leaves_nothing) {
  const auto target = dir_ / "partial.bin";
  std::ofstream(dir_ / "keep.txt") << "keep";
  {
    AtomicFile f(target);
    f.write(kMiB);
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"keep.txt"});
  // An exception between writes unwinds the same way.
  try {
    AtomicFile f(target);
    f.write("half");
    throw std::runtime_error("exporter failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"keep.txt"});
}

TEST_F(atomic_file_test, missing_folder) {
  const auto target = dir_ / "no" / "such" / "folder" / "out.npz";
  std::vector<std::string> failures;
  expect_output_error(failures, target, "No such file or directory", [&] { AtomicFile f(target); });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(atomic_file_test, rename_onto_a_folder_fails_cleanly) {
  const auto target = dir_ / "taken";
  fs::create_directories(target / "inside");
  std::vector<std::string> failures;
  expect_output_error(failures, target, "cannot rename into place", [&] {
    AtomicFile f(target);
    f.write("data");
    f.commit();
  });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"taken"});
  EXPECT_TRUE(fs::is_directory(target / "inside"));
}

TEST_F(atomic_file_test, permission_denied) {
  const auto locked = dir_ / "locked";
  fs::create_directories(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const auto target = locked / "out.json";
  // Root ignores permission bits: the check runs in a child that gives up root first.
  const auto failures = in_child([&](std::vector<std::string>& f) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      f.push_back("cannot drop root to test permissions");
      return;
    }
    expect_output_error(f, target, "Permission denied", [&] { AtomicFile file(target); });
  });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_TRUE(entries(locked).empty());
}

TEST_F(atomic_file_test, read_only_file_system) {
  const auto mnt = dir_ / "ro";
  fs::create_directories(mnt);
  const auto target = mnt / "out.safetensors";
  const auto failures = in_child([&](std::vector<std::string>& f) {
    if (!private_tmpfs(mnt, "ro,size=64k")) {
      f.push_back("note: cannot mount a tmpfs in a private namespace (need CAP_SYS_ADMIN); see permission_denied");
      return;
    }
    expect_output_error(f, target, "Read-only file system", [&] { AtomicFile file(target); });
    if (!entries(mnt).empty()) f.push_back("files left on the read-only mount");
  });
  for (const auto& f : failures) {
    if (f.rfind("note: ", 0) == 0) std::printf("[ note     ] %s\n", f.c_str() + 6);
    else ADD_FAILURE() << f;
  }
  EXPECT_TRUE(entries(mnt).empty());
}

TEST_F(atomic_file_test, no_space_left) {
  const auto mnt = dir_ / "small";
  fs::create_directories(mnt);
  const auto target = mnt / "weights.npz";
  const auto failures = in_child([&](std::vector<std::string>& f) {
    if (!private_tmpfs(mnt, "size=64k")) {
      f.push_back("note: cannot mount a tmpfs in a private namespace (need CAP_SYS_ADMIN); see size_limit");
      return;
    }
    std::ofstream(target) << "previous";
    expect_output_error(f, target, "No space left on device", [&] {
      AtomicFile file(target);
      for (int i = 0; i < 4; ++i) file.write(kMiB);
      file.commit();
    });
    if (entries(mnt) != std::vector<std::string>{"weights.npz"}) f.push_back("a partial file was left");
    if (slurp(target) != "previous") f.push_back("the previous file changed");
  });
  for (const auto& f : failures) {
    if (f.rfind("note: ", 0) == 0) std::printf("[ note     ] %s\n", f.c_str() + 6);
    else ADD_FAILURE() << f;
  }
}

TEST_F(atomic_file_test, size_limit) {
  const auto target = dir_ / "big.npz";
  std::ofstream(target) << "previous";
  const auto failures = in_child([&](std::vector<std::string>& f) {
    std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing us
    const rlimit limit{64 << 10, 64 << 10};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
      f.push_back("setrlimit failed");
      return;
    }
    expect_output_error(f, target, "File too large", [&] {
      AtomicFile file(target);
      for (int i = 0; i < 4; ++i) file.write(kMiB);
      file.commit();
    });
  });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"big.npz"}) << "no partial file may be left";
  EXPECT_EQ(slurp(target), "previous");
}

TEST_F(atomic_file_test, spent_after_failure) {
  const auto target = dir_ / "x.bin";
  const auto failures = in_child([&](std::vector<std::string>& f) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    AtomicFile file(target);
    try {
      file.write(kMiB);
      f.push_back("no error past the size limit");
    } catch (const Error&) {
    }
    if (!file.temp_path().empty() && fs::exists(file.temp_path())) f.push_back("temporary file kept after failure");
    expect_output_error(f, target, "earlier write failed", [&] { file.write("more"); });
    expect_output_error(f, target, "earlier write failed", [&] { file.commit(); });
  });
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(atomic_file_test, moves_keep_ownership) {
  const auto target = dir_ / "moved.bin";
  AtomicFile a(target);
  a.write("abc");
  AtomicFile b(std::move(a));
  b.write("def");
  b.commit();
  EXPECT_EQ(slurp(target), "abcdef");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"moved.bin"});
}

TEST_F(atomic_file_test, a_link_is_replaced_by_default_and_written_through_on_request) {
  fs::create_directories(dir_ / "real");
  std::ofstream(dir_ / "real" / "a.bin") << "old a";
  std::ofstream(dir_ / "real" / "b.bin") << "old b";
  fs::create_symlink(fs::path("real") / "a.bin", dir_ / "a.link");
  fs::create_symlink(dir_ / "real" / "b.bin", dir_ / "b.hop");  // absolute, then a chain
  fs::create_symlink("b.hop", dir_ / "b.link");
  {
    AtomicFile f(dir_ / "a.link");  // default: the name itself is replaced
    EXPECT_EQ(f.destination(), dir_ / "a.link");
    f.write("new a");
    f.commit();
  }
  EXPECT_FALSE(fs::is_symlink(dir_ / "a.link"));
  EXPECT_EQ(slurp(dir_ / "a.link"), "new a");
  EXPECT_EQ(slurp(dir_ / "real" / "a.bin"), "old a");
  {
    AtomicFile f(dir_ / "b.link", {.follow_symlinks = true});
    EXPECT_EQ(f.destination(), dir_ / "real" / "b.bin");
    EXPECT_EQ(f.target(), dir_ / "b.link");
    EXPECT_EQ(f.temp_path().parent_path(), dir_ / "real");  // beside the file, so the rename stays atomic
    f.write("new b");
    f.commit();
  }
  EXPECT_TRUE(fs::is_symlink(dir_ / "b.link"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "b.hop"));
  EXPECT_EQ(slurp(dir_ / "real" / "b.bin"), "new b");
  EXPECT_EQ(entries(dir_ / "real"), (std::vector<std::string>{"a.bin", "b.bin"}));
  // A loop of links is an output error naming the target.
  fs::create_symlink("loop2", dir_ / "loop1");
  fs::create_symlink("loop1", dir_ / "loop2");
  std::vector<std::string> failures;
  expect_output_error(failures, dir_ / "loop1", "too many levels of symbolic links",
                      [&] { AtomicFile f(dir_ / "loop1", {.follow_symlinks = true}); });
  for (const auto& f : failures) ADD_FAILURE() << f;
}

TEST_F(atomic_file_test, keep_attributes_keeps_the_mode_of_the_file_replaced) {
  const auto mode_of = [](const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  };
  const mode_t old_mask = ::umask(022);
  const auto target = dir_ / "secret.bin";
  std::ofstream(target) << "old";
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  {
    AtomicFile f(target, {.keep_attributes = true});
    EXPECT_EQ(mode_of(f.temp_path()), 0600u);  // never more open than the file it replaces
    f.write("new");
    f.commit();
  }
  EXPECT_EQ(mode_of(target), 0600u);
  EXPECT_EQ(slurp(target), "new");
  ASSERT_EQ(::chmod(target.c_str(), 0751), 0);
  {
    AtomicFile f(target, {.keep_attributes = true});
    f.write("x");
    f.commit();
  }
  EXPECT_EQ(mode_of(target), 0751u);  // also bits the umask would clear
  {
    AtomicFile f(target);  // without the option: a new file's mode
    f.write("y");
    f.commit();
  }
  EXPECT_EQ(mode_of(target), 0644u);
  {
    AtomicFile f(dir_ / "fresh.bin", {.keep_attributes = true});  // nothing to keep
    f.write("z");
    f.commit();
  }
  EXPECT_EQ(mode_of(dir_ / "fresh.bin"), 0644u);
  ::umask(old_mask);
}

}  // namespace
}  // namespace litelens::hardening
