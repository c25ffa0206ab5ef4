#include "run.h"

#include "device_buffer.h"

namespace spartan_addon {
namespace {

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::vector<Napi::Object>& keep, ArgNames names, Work work, Finish finish)
      : Napi::AsyncWorker(env, "spartan"), deferred_(Napi::Promise::Deferred::New(env)), names_(names),
        work_(std::move(work)), finish_(std::move(finish)) {
    for (auto& o : keep) {
      refs_.push_back(Napi::Persistent(o));
      if (DeviceBuffer* b = DeviceBuffer::From(o)) {  // device memory stays allocated until this call settles
        b->Hold();
        held_.push_back(b);
      }
    }
  }
  ~Worker() override {
    for (DeviceBuffer* b : held_) b->Unhold();  // main thread, after OnOK / OnError; refs_ still alive here
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      status_ = work_();
    } catch (const std::bad_alloc&) {  // the promise rejects, the process lives
      SetError("out of memory in the spartan kernels");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!status_.ok()) {
      deferred_.Reject(StatusError(env, status_, names_).Value());
      return;
    }
    try {
      deferred_.Resolve(finish_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(MakeError(Env(), ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  std::vector<DeviceBuffer*> held_;
  ArgNames names_;
  Work work_;
  Finish finish_;
  spartan::Status status_;
};

}  // namespace

Napi::Value Run(Napi::Env env, bool async, std::vector<Napi::Object>& keep_alive, ArgNames names, Work work,
                Finish finish) {
  if (async) {
    auto* w = new Worker(env, keep_alive, names, std::move(work), std::move(finish));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  spartan::Status st;
  try {
    st = work();
  } catch (const std::bad_alloc&) {
    throw MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", "out of memory in the spartan kernels");
  }
  if (!st.ok()) throw StatusError(env, st, names);
  return finish(env);
}

}  // namespace spartan_addon
