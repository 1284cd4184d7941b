// ReadRegularFile: a whole small file, read with a bound.
//
// Why: configuration bundles, certificates and anchors come from files an
// operator names; reading one must not follow a symlink planted in its place,
// block on a FIFO, or allocate whatever size the file claims. One reader
// opens with O_NOFOLLOW, requires a regular file, checks the size before
// reading and refuses a file that grows while being read.
#pragma once

#include <cstddef>
#include <string>

#include "firmware/base/status.h"

namespace tkms {

// The contents of `path` (at most max_bytes). kNotFound if it does not exist,
// kInvalidArgument if it is not a regular file (or a symlink) or is too large,
// kUnavailable for other I/O errors. Messages name `what` and the path.
Result<std::string> ReadRegularFile(const std::string& path, size_t max_bytes, const std::string& what);

}  // namespace tkms
