// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// counting_new.h: replaces the global operator new of a test binary and
// counts calls while g_counting is up, for the zero-allocation tests of the
// check path (C++ and C API). Include it in exactly one translation unit
// of a binary: it defines the replacement operators.
//
// Every form that pairs with the plain deletes below is replaced, so that
// memory never crosses allocators (ASan checks new/free pairing).
//
// Thread safety: the counters are atomics; count from one thread at a time.

#ifndef PLANGATE_TESTS_SUPPORT_COUNTING_NEW_H_
#define PLANGATE_TESTS_SUPPORT_COUNTING_NEW_H_

#include <atomic>
#include <cstdlib>
#include <new>

namespace plangate::testing {

inline std::atomic<bool> g_counting{false};
inline std::atomic<long> g_allocations{0};

inline void* CountedAlloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace plangate::testing

void* operator new(std::size_t n) { return plangate::testing::CountedAlloc(n); }
void* operator new[](std::size_t n) {
  return plangate::testing::CountedAlloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return plangate::testing::CountedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return plangate::testing::CountedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

#endif  // PLANGATE_TESTS_SUPPORT_COUNTING_NEW_H_
