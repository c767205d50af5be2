"""Builds the pruned, container-free Lambda runtime into vendor/ and proves it works."""
