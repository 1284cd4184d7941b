#include "hal/entropy.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tkms::hal {

Status OsEntropy::Random(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(std::string("getrandom: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace tkms::hal
