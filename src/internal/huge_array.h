// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// huge_array.h: a fixed-size array of T on transparent huge pages.
//
// The counter and reservation tables are large and read at random, so with
// 4 KiB pages nearly every lookup also misses the TLB (and on a VM a miss
// walks two page tables). Backing them with 2 MiB pages, where the kernel
// allows it (madvise mode), removes most of those misses. Allocation
// happens once, at construction; elements are value-initialized.
//
// Thread safety: like a plain array: the container is immutable after
// construction; element access is the caller's business.

#ifndef PLANGATE_INTERNAL_HUGE_ARRAY_H_
#define PLANGATE_INTERNAL_HUGE_ARRAY_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace plangate::internal {

template <typename T>
class HugeArray {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  explicit HugeArray(size_t n) : size_(n) {
    bytes_ = (n * sizeof(T) + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, bytes_);
    if (p == nullptr) throw std::bad_alloc();
    // Advisory: without THP the memory simply stays on small pages.
    (void)madvise(p, bytes_, MADV_HUGEPAGE);
    data_ = static_cast<T*>(p);
    std::uninitialized_value_construct_n(data_, n);
  }
  ~HugeArray() {
    std::destroy_n(data_, size_);
    std::free(data_);
  }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;

  T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace plangate::internal

#endif  // PLANGATE_INTERNAL_HUGE_ARRAY_H_
