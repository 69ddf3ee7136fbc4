// What the device offers, and the words for the messages of fits that do not fit (every model).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace pln {

// Bytes the device can still give (NaN when unknown).
double available_bytes(const at::Device& dev);
// "3.2 GB", "410.0 MB", "12 kB".
std::string bytes_str(double b);
// Hands LibTorch's cached, unused device memory back (after a failed allocation).
void release_cached_memory();
// LibTorch's CPU allocator ("can't allocate memory") and CUDA calls other than the caching
// allocator's ("CUDA error: out of memory").
bool is_alloc_failure(const std::string& what);
// The part of an allocator's message that names the size ("LibTorch: Tried to allocate 3.73 GiB"),
// or "LibTorch: out of memory".
std::string allocation_detail(const std::string& what);

}  // namespace pln
