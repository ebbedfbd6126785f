//! Compiles the small C++ shim that stops C++ exceptions at the FFI boundary
//! (`src/engine/cpp_guard.cpp`). The C++ runtime itself is linked by llama-cpp-sys-2.
fn main() {
    println!("cargo:rerun-if-changed=src/engine/cpp_guard.cpp");
    cc::Build::new()
        .cpp(true)
        .cpp_link_stdlib(None)
        .flag_if_supported("-fexceptions")
        .file("src/engine/cpp_guard.cpp")
        .compile("pocketlm_cpp_guard");
}
