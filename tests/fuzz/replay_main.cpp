// Corpus replay driver: the main() linked into every fuzz target when it is
// not built with libFuzzer (see tkms_fuzz() in the top-level CMakeLists.txt).
//
// Why: the committed corpora in tests/fuzz/corpus/ are regression inputs. The
// debug, release and asan-ubsan builds replay them through the same
// LLVMFuzzerTestOneInput as the fuzzer, so a property violation (abort()) or a
// sanitizer report fails ctest without needing libFuzzer.
//
// Usage: <target> PATH...
//   A file is run as one input. A directory contributes the regular files
//   directly inside it (one level, no deeper), in sorted order, so every run
//   replays the same inputs in the same order. Arguments starting with '-'
//   are libFuzzer flags and are ignored. The driver fails if a path does not
//   exist or if it ran no input at all: a replay that tests nothing must not
//   pass.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace {

namespace fs = std::filesystem;

// Collects the inputs named by one command-line path. Returns false (after
// printing why) if the path cannot be used.
bool CollectInputs(const fs::path& path, std::vector<fs::path>& out) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    std::fprintf(stderr, "replay: %s: no such file or directory\n", path.c_str());
    return false;
  }
  if (fs::is_regular_file(status)) {
    out.push_back(path);
    return true;
  }
  if (!fs::is_directory(status)) {
    std::fprintf(stderr, "replay: %s: not a regular file or directory\n", path.c_str());
    return false;
  }
  std::vector<fs::path> files;
  fs::directory_iterator it(path, ec);
  if (ec) {
    std::fprintf(stderr, "replay: %s: cannot list directory: %s\n", path.c_str(),
                 ec.message().c_str());
    return false;
  }
  for (const fs::directory_entry& entry : it) {
    std::error_code entry_ec;
    if (entry.is_regular_file(entry_ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  out.insert(out.end(), files.begin(), files.end());
  return true;
}

// Reads a whole file into a buffer of exactly its size, so that ASan reports
// any read past the end of the input.
bool ReadInput(const fs::path& path, std::unique_ptr<uint8_t[]>& buffer, size_t& size) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff end = in.tellg();
  if (end < 0) return false;
  size = static_cast<size_t>(end);
  buffer = std::make_unique<uint8_t[]>(size);  // non-null even for size 0
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(buffer.get()), static_cast<std::streamsize>(size))) {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> inputs;
  bool paths_ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "replay: ignoring libFuzzer flag %s\n", arg.c_str());
      continue;
    }
    paths_ok = CollectInputs(arg, inputs) && paths_ok;
  }
  if (!paths_ok) return 2;
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs (usage: %s FILE_OR_DIR...)\n",
                 argc > 0 ? argv[0] : "replay");
    return 2;
  }

  size_t ran = 0;
  for (const fs::path& path : inputs) {
    std::unique_ptr<uint8_t[]> buffer;
    size_t size = 0;
    if (!ReadInput(path, buffer, size)) {
      std::fprintf(stderr, "replay: %s: cannot read\n", path.c_str());
      return 2;
    }
    // Named before running so that an abort() or sanitizer report can be
    // traced to its input.
    std::fprintf(stderr, "Running: %s (%zu bytes)\n", path.c_str(), size);
    LLVMFuzzerTestOneInput(buffer.get(), size);
    ++ran;
  }
  std::printf("replay: ran %zu inputs\n", ran);
  return 0;
}
