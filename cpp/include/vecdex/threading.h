// The one place that knows whether OpenMP is there; without it everything runs on one thread.
#pragma once

#include <cstddef>
#include <exception>
#include <mutex>

namespace vecdex {

// 0 means every core OpenMP would use; anything else is taken as asked.
int resolve_num_threads(int requested);

// Carries the first exception out of a parallel loop, whose body must not throw.
class FirstError {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> g(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
  bool failed() const { return error_ != nullptr; }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr error_;
};

}  // namespace vecdex
