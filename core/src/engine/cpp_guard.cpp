// Stops C++ exceptions before they reach Rust.
//
// ggml's GPU backends report driver failures by throwing (vk::SystemError,
// std::runtime_error): creating a Vulkan device, compiling its pipelines,
// allocating device memory. An exception that unwinds into Rust code called
// through the plain C ABI aborts the process, so the GPU probe runs its
// device calls inside pocketlm_catch_cpp, which turns the exception into a
// message. See core/src/cpp_guard.rs.

#include <cstddef>
#include <cstring>
#include <exception>
#include <stdexcept>

static void copy_message(const char *text, char *what, size_t what_len) {
    if (what == nullptr || what_len == 0) return;
    std::strncpy(what, text, what_len - 1);
    what[what_len - 1] = '\0';
}

// Runs body(data). Returns 0 when it returns normally, or 1 when it throws a
// std::exception (whose what() is copied into `what`). Other exceptions,
// including Rust panics, pass through untouched.
extern "C" int pocketlm_catch_cpp(void (*body)(void *), void *data, char *what, size_t what_len) {
    try {
        body(data);
        return 0;
    } catch (const std::exception &e) {
        copy_message(e.what(), what, what_len);
        return 1;
    }
}

// Throws std::runtime_error(message). For the guard's own test: a real C++
// exception thrown from C++ code, the way ggml throws.
extern "C" void pocketlm_throw_cpp(const char *message) {
    throw std::runtime_error(message);
}
