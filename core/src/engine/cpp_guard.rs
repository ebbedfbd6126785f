//! Keeping C++ exceptions out of Rust.
//!
//! ggml's GPU backends throw C++ exceptions when a driver fails (creating the
//! device, compiling pipelines, allocating memory). llama.cpp catches them
//! around model loading and context creation (not in `llama_decode`; see
//! docs/backends.md), but the GPU probe calls ggml's device API directly,
//! and an exception unwinding through a plain `extern "C"` call aborts the
//! process. So the probe's device calls are declared here with the
//! `C-unwind` ABI and run inside [`catching`], whose C++ frame
//! (`cpp_guard.cpp`) turns the exception into an error message.

use std::ffi::{c_char, c_int, c_void, CStr};

use llama_cpp_sys_2 as sys;

/// ggml's device calls that can throw, declared so an exception may unwind
/// through the Rust frames that call them (same symbols as llama-cpp-sys-2's).
#[allow(missing_docs)]
pub(crate) mod ggml {
    use super::*;

    extern "C-unwind" {
        pub fn ggml_backend_dev_supports_op(device: sys::ggml_backend_dev_t, op: *const sys::ggml_tensor) -> bool;
        pub fn ggml_backend_dev_init(device: sys::ggml_backend_dev_t, params: *const c_char) -> sys::ggml_backend_t;
        pub fn ggml_backend_alloc_ctx_tensors(ctx: *mut sys::ggml_context, backend: sys::ggml_backend_t) -> sys::ggml_backend_buffer_t;
        pub fn ggml_backend_tensor_set(tensor: *mut sys::ggml_tensor, data: *const c_void, offset: usize, size: usize);
        pub fn ggml_backend_tensor_get(tensor: *const sys::ggml_tensor, data: *mut c_void, offset: usize, size: usize);
        pub fn ggml_backend_graph_compute(backend: sys::ggml_backend_t, graph: *mut sys::ggml_cgraph) -> sys::ggml_status;
        pub fn ggml_backend_buffer_free(buffer: sys::ggml_backend_buffer_t);
        pub fn ggml_backend_free(backend: sys::ggml_backend_t);
    }
}

extern "C-unwind" {
    fn pocketlm_catch_cpp(body: extern "C-unwind" fn(*mut c_void), data: *mut c_void, what: *mut c_char, what_len: usize) -> c_int;
}

/// Runs `f`; a C++ `std::exception` escaping from it becomes `Err` with the
/// exception's message. Rust panics in `f` propagate as usual.
pub(crate) fn catching<T, F: FnOnce() -> T>(f: F) -> Result<T, String> {
    struct Call<F, T> {
        f: Option<F>,
        out: Option<T>,
    }
    extern "C-unwind" fn body<F: FnOnce() -> T, T>(data: *mut c_void) {
        // SAFETY: `data` is the `Call` below, alive for the whole call.
        let call = unsafe { &mut *data.cast::<Call<F, T>>() };
        if let Some(f) = call.f.take() {
            call.out = Some(f());
        }
    }
    let mut call = Call { f: Some(f), out: None };
    let mut what = [0 as c_char; 512];
    // SAFETY: `body::<F, T>` matches `call`'s type, and `what` is writable
    // for its length.
    let thrown = unsafe { pocketlm_catch_cpp(body::<F, T>, (&mut call as *mut Call<F, T>).cast(), what.as_mut_ptr(), what.len()) };
    match (thrown, call.out) {
        (0, Some(out)) => Ok(out),
        _ => {
            // SAFETY: the shim always NUL-terminates `what`; zeroed otherwise.
            let message = unsafe { CStr::from_ptr(what.as_ptr()) }.to_string_lossy();
            Err(format!("the GPU driver threw an exception: {}", if message.is_empty() { "(no message)" } else { &message }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C-unwind" {
        fn pocketlm_throw_cpp(message: *const c_char);
    }

    #[test]
    fn a_cpp_exception_becomes_an_error() {
        let err = catching(|| unsafe { pocketlm_throw_cpp(c"vk::SystemError: device lost".as_ptr()) }).unwrap_err();
        assert!(err.contains("device lost"), "{err}");
        // The process is intact and the guard still works.
        assert_eq!(catching(|| 6 * 7), Ok(42));
    }

    #[test]
    #[should_panic(expected = "a Rust panic")]
    fn rust_panics_pass_through() {
        let _ = catching(|| panic!("a Rust panic"));
    }
}
