#include "host_copies.h"

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "errors.h"
#include "views.h"

namespace spartan_addon {
namespace {

// Freshly allocated memory costs a page fault per 4 KiB on first touch, several times a
// warm memcpy (64 MiB: ~28 ms against ~3.5 ms on the project's VM), and the copy-in runs on
// the main thread. So large copies come from, and return to, a small process-wide cache.
// Shared by every Node environment (worker threads) that loads the addon, hence the mutex.
constexpr size_t kCacheMin = size_t(1) << 20;   // smaller copies: plain allocations
constexpr size_t kCacheCap = size_t(256) << 20;  // idle bytes kept at most
std::mutex cache_mutex;
std::multimap<size_t, std::unique_ptr<uint8_t[]>> cache;  // capacity -> memory
size_t cached_bytes = 0;

// Memory for `bytes`: a cached block of at most twice that size, or a new one.
std::unique_ptr<uint8_t[]> Take(size_t bytes, size_t* capacity) {
  if (bytes >= kCacheMin) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.lower_bound(bytes);
    if (it != cache.end() && it->first <= 2 * bytes) {
      *capacity = it->first;
      cached_bytes -= it->first;
      std::unique_ptr<uint8_t[]> block = std::move(it->second);
      cache.erase(it);
      return block;
    }
  }
  *capacity = bytes;
  return std::unique_ptr<uint8_t[]>(new uint8_t[bytes]);
}

// Keeps a large block for the next call, dropping the smallest cached ones beyond the cap.
// Never throws (it runs in a destructor); dropped blocks are freed after the lock is released.
void Give(std::unique_ptr<uint8_t[]> block, size_t capacity) noexcept {
  if (!block || capacity < kCacheMin || capacity > kCacheCap) return;
  std::vector<std::unique_ptr<uint8_t[]>> dropped;
  try {
    dropped.reserve(4);
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache.emplace(capacity, std::move(block));
    cached_bytes += capacity;
    while (cached_bytes > kCacheCap) {
      std::unique_ptr<uint8_t[]> victim = std::move(cache.begin()->second);
      cached_bytes -= cache.begin()->first;
      cache.erase(cache.begin());
      dropped.push_back(std::move(victim));  // should this throw, victim is freed here, under the lock
    }
  } catch (...) {
    // out of memory for the cache's bookkeeping: the block (if not cached yet) is simply freed
  }
}

}  // namespace

HostCopies::~HostCopies() {
  for (Copy& c : copies_) Give(std::move(c.data), c.capacity);
}

void* HostCopies::Data(Napi::Env env, const Napi::TypedArray& t, const std::string& name, bool written) {
  const View view = ViewOf(t);
  uint8_t* at = view.data;
  const size_t bytes = view.bytes;
  if (bytes == 0 || view.shared) return at;  // nothing to read or write; memory no one can detach
  Copy* c = nullptr;
  for (Copy& e : copies_)
    if (e.original == at && e.bytes == bytes) c = &e;
  // Every other copy this view overlaps: refused when either side is written, this side
  // counting as written also when it shares the copy of an earlier written view (or an
  // earlier read-only view's copy becomes written now).
  const bool writes = written || (c && c->written);
  for (Copy& e : copies_) {
    if (&e == c) continue;
    const bool overlap = at < e.original + e.bytes && e.original < at + bytes;
    if (overlap && (writes || e.written))
      Throw(env, ErrorKind::kRange, "ERR_SPARTAN_ALIAS",
            (writes ? (written ? name : c->name) : e.name) + " overlaps another array of this call without being the same array");
  }
  if (!c) {
    Copy fresh;
    fresh.original = at;
    fresh.bytes = bytes;
    try {
      fresh.data = Take(bytes, &fresh.capacity);
    } catch (const std::bad_alloc&) {
      Throw(env, ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", "out of memory copying " + name + " for an async call");
    }
    copies_.push_back(std::move(fresh));
    c = &copies_.back();
  }
  if (!written && !c->filled) {  // the op reads these bytes: they must be the caller's
    std::memcpy(c->data.get(), at, bytes);
    c->filled = true;
  }
  if (written && !c->written) {
    c->written = true;
    c->name = name;
    c->view = Napi::Persistent(t);
  }
  return c->data.get();
}

bool HostCopies::WriteBack(std::string* lost) {
  bool ok = true;
  for (Copy& c : copies_) {
    if (!c.written) continue;
    Napi::TypedArray t = c.view.Value();
    const View view = ViewOf(t);
    if (view.detached || view.bytes != c.bytes) {
      if (ok) *lost = c.name;
      ok = false;
      continue;
    }
    std::memcpy(view.data, c.data.get(), c.bytes);
  }
  return ok;
}

}  // namespace spartan_addon
