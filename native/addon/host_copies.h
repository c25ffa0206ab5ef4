// The host arrays of an async call, copied at the call. A caller may detach (transfer) an
// ArrayBuffer while the kernel runs on the libuv pool; its memory then belongs to the new
// owner, and the GC may free it under the running kernel. So an async call works on copies
// made on the main thread, and copies the written ones back when it settles, on the main
// thread again, where a detached or shrunk output is a coded rejection instead.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace spartan_addon {

class HostCopies {
 public:
  HostCopies() = default;
  HostCopies(const HostCopies&) = delete;
  HostCopies& operator=(const HostCopies&) = delete;
  ~HostCopies();  // the copies' memory goes back to a small cache (host_copies.cc)

  // The pointer the kernel uses for t: a copy of its bytes (the same copy for views of the
  // same bytes, so an op's in-place form stays in place). A view the op only writes is not
  // copied in: on success every op writes the whole of each output. A written view that partly
  // overlaps another view is ERR_SPARTAN_ALIAS, as the ops refuse such calls anyway.
  void* Data(Napi::Env env, const Napi::TypedArray& t, const std::string& name, bool written);
  // Copies the written views back. False, with that view's name, when one was detached or
  // resized meanwhile; the others are still copied back.
  bool WriteBack(std::string* lost);

 private:
  struct Copy {
    const uint8_t* original;  // where the bytes were at the call (an identity only, never read later)
    size_t bytes;
    std::unique_ptr<uint8_t[]> data;
    size_t capacity = 0;  // of data
    bool filled = false;  // holds the original bytes (a view the op only writes needs none)
    bool written = false;
    std::string name;                       // of a written view
    Napi::Reference<Napi::TypedArray> view;  // a written view, to copy back into
  };
  std::vector<Copy> copies_;
};

}  // namespace spartan_addon
