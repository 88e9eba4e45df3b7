// Kobold's shared-memory primitives: map a named segment into an ArrayBuffer, and Linux
// futex wait/wake on a 32-bit word of it. Everything else (rings, tables, locks, queues)
// is TypeScript over Atomics; keep this file to what JavaScript cannot do.
#include <napi.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <thread>

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {

enum WaitResult { kWoken = 0, kNotEqual = 1, kTimedOut = 2 };

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) {
  Napi::Error error = Napi::Error::New(env, what + ": " + strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

int OpenSegment(const std::string& path, bool isFile, bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  return isFile ? open(path.c_str(), flags, 0600) : shm_open(path.c_str(), flags, 0600);
}

// map(path, isFile, size, create) -> { buffer, fd }. The fd is returned holding an
// exclusive flock so the caller can initialise a new segment before anyone else looks
// at it; release(fd) drops the lock and closes it. size only applies to a new (empty)
// segment; an existing one is mapped whole, at its own size.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  bool isFile = info[1].As<Napi::Boolean>();
  size_t size = info[2].As<Napi::Number>().Int64Value();
  bool create = info[3].As<Napi::Boolean>();

  int fd = OpenSegment(path, isFile, create);
  if (fd < 0) throw ErrnoError(env, "open " + path, errno);
  struct stat st;
  int err = 0;
  if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
    err = errno;
  } else if (st.st_size == 0 && size > 0) {
    if (ftruncate(fd, size) != 0) err = errno;
    st.st_size = size;
  } else if (st.st_size == 0) {
    err = ENODATA;  // created by someone who has not sized it yet
  }
  if (err != 0) {
    close(fd);
    throw ErrnoError(env, "map " + path, err);
  }
  size_t length = st.st_size;
  void* data = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    err = errno;
    close(fd);
    throw ErrnoError(env, "mmap " + path, err);
  }
  // The mapping lives exactly as long as the ArrayBuffer that exposes it.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, data, length, [](Napi::Env, void* mapped, size_t* len) {
        munmap(mapped, *len);
        delete len;
      },
      new size_t(length));
  Napi::Object result = Napi::Object::New(env);
  result.Set("buffer", buffer);
  result.Set("fd", Napi::Number::New(env, fd));
  return result;
}

void Release(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  flock(fd, LOCK_UN);
  close(fd);
}

// unlink(path, isFile) -> true when removed, false when it did not exist.
Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  bool isFile = info[1].As<Napi::Boolean>();
  int rc = isFile ? unlink(path.c_str()) : shm_unlink(path.c_str());
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  throw ErrnoError(env, "unlink " + path, errno);
}

int32_t* WordAt(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  size_t offset = info[1].As<Napi::Number>().Int64Value();
  if (offset % 4 != 0 || offset + 4 > buffer.ByteLength()) {
    throw Napi::RangeError::New(info.Env(), "futex word out of range or unaligned");
  }
  return reinterpret_cast<int32_t*>(static_cast<char*>(buffer.Data()) + offset);
}

int FutexWait(int32_t* word, int32_t expected, double timeoutMs) {
  struct timespec timeout;
  struct timespec* timeoutPtr = nullptr;
  if (timeoutMs >= 0) {
    timeout.tv_sec = static_cast<time_t>(timeoutMs / 1000);
    timeout.tv_nsec = static_cast<long>((timeoutMs - timeout.tv_sec * 1000.0) * 1e6);
    timeoutPtr = &timeout;
  }
  // Not FUTEX_PRIVATE: the word is shared between processes.
  long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, timeoutPtr, nullptr, 0);
  if (rc == 0) return kWoken;
  if (errno == EAGAIN) return kNotEqual;
  if (errno == ETIMEDOUT) return kTimedOut;
  return kWoken;  // EINTR: the caller re-checks its condition anyway.
}

// wait(buffer, byteOffset, expected, timeoutMs) -> 0 woken, 1 not equal, 2 timed out.
// Blocks the calling thread: use it off the event loop or with a short timeout.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  int32_t* word = WordAt(info);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeoutMs = info[3].As<Napi::Number>().DoubleValue();
  return Napi::Number::New(info.Env(), FutexWait(word, expected, timeoutMs));
}

// wake(buffer, byteOffset, count) -> number of waiters woken.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  int32_t* word = WordAt(info);
  int count = info[2].As<Napi::Number>().Int32Value();
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return Napi::Number::New(info.Env(), rc < 0 ? 0 : rc);
}

// waitAsync(buffer, byteOffset, expected, timeoutMs) -> Promise of wait()'s result.
// Each call waits on its own short-lived thread rather than libuv's small threadpool,
// so long waits never starve file system work. The buffer is referenced until it ends.
Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = WordAt(info);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeoutMs = info[3].As<Napi::Number>().DoubleValue();
  auto* deferred = new Napi::Promise::Deferred(env);
  auto* keepAlive = new Napi::ObjectReference(Napi::Persistent(info[0].As<Napi::Object>()));
  Napi::Promise promise = deferred->Promise();
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "kobold-futex-wait", 0, 1);
  std::thread([tsfn, word, expected, timeoutMs, deferred, keepAlive]() mutable {
    int result = FutexWait(word, expected, timeoutMs);
    tsfn.BlockingCall([result, deferred, keepAlive](Napi::Env env, Napi::Function) {
      deferred->Resolve(Napi::Number::New(env, result));
      delete deferred;
      delete keepAlive;
    });
    tsfn.Release();
  }).detach();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("map", Napi::Function::New(env, Map));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("unlink", Napi::Function::New(env, Unlink));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("wake", Napi::Function::New(env, Wake));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync));
  return exports;
}

}  // namespace

NODE_API_MODULE(kobold_shm, Init)
