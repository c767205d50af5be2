"""Model tooling Chalice never packages: demo data, training, LiteRT conversion,
publishing, example requests."""

import os

# Before TensorFlow is imported by any tool here: its C++ and absl lines (CPU features,
# oneDNN, "All log messages before absl::InitializeLog()") would come before a user's
# one `error:` line and say nothing to act on. Set it to 0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
