//! The GPU kernel self-test: before a model is trusted to a GPU device, run
//! the kernels a Q4_K_M model leans on (a Q4_K matrix-vector product, the
//! single-token path; Q4_K and Q6_K matrix-matrix products over a batch, the
//! prompt path; RMS norm, add, softmax) on the
//! device and on the CPU, and compare. A driver that computes garbage, NaNs
//! or refuses the operations fails here, in milliseconds, instead of in the
//! user's chat.
//!
//! Every graph is fixed and valid, and each operation is checked with
//! `ggml_backend_dev_supports_op` before it runs, so no ggml assertion can
//! fire on the way. A driver that throws a C++ exception instead (device
//! creation, pipeline compilation, memory) is stopped by
//! [`super::cpp_guard`] and fails the test with its message.

use std::ptr;

use llama_cpp_sys_2 as sys;

use super::cpp_guard::{catching, ggml};

/// Row length of the test matrices (Q4_K and Q6_K blocks are 256 wide).
const K: i64 = 256;
/// Rows of the test matrices (outputs per column).
const N: i64 = 64;
/// Batch width of the prompt-path product (wide enough for matrix-matrix kernels).
const BATCH: i64 = 16;
/// The largest accepted difference, relative to the CPU output's magnitude.
pub(crate) const TOLERANCE: f32 = 0.02;

/// Runs the self-test on `dev` against the CPU. `Ok` carries the largest
/// relative difference seen; `Err` says why the device cannot be trusted.
pub(crate) fn compare_with_cpu(dev: sys::ggml_backend_dev_t) -> Result<f32, String> {
    // SAFETY: returns the CPU device registered at backend start (never null
    // in a llama.cpp build, which always has the CPU backend).
    let cpu = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
    if cpu.is_null() {
        return Err("no CPU backend to compare with".into());
    }
    let inputs = Inputs::new();
    let want = catching(|| run(cpu, &inputs))??;
    let got = catching(|| run(dev, &inputs))??;
    let mut worst = 0.0f32;
    for (name, (w, g)) in ["Q4_K matrix-vector", "Q6_K matrix-matrix", "RMS norm + Q4_K + softmax"].iter().zip(want.iter().zip(&got)) {
        if let Some(bad) = g.iter().find(|v| !v.is_finite()) {
            return Err(format!("{name} gave a non-finite value ({bad})"));
        }
        let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = w.iter().zip(g).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        if diff > TOLERANCE || diff.is_nan() {
            return Err(format!("{name} differs from the CPU by {:.1} % (more than {:.0} %)", diff * 100.0, TOLERANCE * 100.0));
        }
        worst = worst.max(diff);
    }
    Ok(worst)
}

/// Deterministic test data: quantised weights and float activations.
struct Inputs {
    q4: Vec<u8>,
    q6: Vec<u8>,
    x1: Vec<f32>,
    xb: Vec<f32>,
}

impl Inputs {
    fn new() -> Inputs {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let weights: Vec<f32> = (0..K * N).map(|_| next() * 0.1).collect();
        let x1 = (0..K).map(|_| next()).collect();
        let xb = (0..K * BATCH).map(|_| next()).collect();
        Inputs { q4: quantize(sys::GGML_TYPE_Q4_K, &weights), q6: quantize(sys::GGML_TYPE_Q6_K, &weights), x1, xb }
    }
}

/// Quantises N rows of K weights to `ty`.
fn quantize(ty: sys::ggml_type, weights: &[f32]) -> Vec<u8> {
    // SAFETY: `dst` holds N rows of `ggml_row_size(ty, K)` bytes, exactly what
    // quantising N rows of K floats writes; K is a multiple of the block size.
    unsafe {
        let mut dst = vec![0u8; sys::ggml_row_size(ty, K) * N as usize];
        sys::ggml_quantize_chunk(ty, weights.as_ptr(), dst.as_mut_ptr().cast(), 0, N, K, ptr::null());
        dst
    }
}

/// Owns the ggml objects of one run and frees them on every path.
struct Run {
    ctx: *mut sys::ggml_context,
    backend: sys::ggml_backend_t,
    buffer: sys::ggml_backend_buffer_t,
}

impl Drop for Run {
    fn drop(&mut self) {
        // SAFETY: each pointer is either null or owned by this run.
        unsafe {
            if !self.buffer.is_null() {
                ggml::ggml_backend_buffer_free(self.buffer);
            }
            if !self.backend.is_null() {
                ggml::ggml_backend_free(self.backend);
            }
            if !self.ctx.is_null() {
                sys::ggml_free(self.ctx);
            }
        }
    }
}

/// Builds the test graph on `dev`, runs it, and returns its three outputs.
fn run(dev: sys::ggml_backend_dev_t, inputs: &Inputs) -> Result<[Vec<f32>; 3], String> {
    // SAFETY: the graph is built from tensors of matching shapes in a context
    // sized for them; every node is checked with supports_op before compute;
    // buffers are sized by ggml for the tensors they hold.
    unsafe {
        let params = sys::ggml_init_params {
            mem_size: sys::ggml_tensor_overhead() * 32 + sys::ggml_graph_overhead(),
            mem_buffer: ptr::null_mut(),
            no_alloc: true,
        };
        let mut run = Run { ctx: sys::ggml_init(params), backend: ptr::null_mut(), buffer: ptr::null_mut() };
        if run.ctx.is_null() {
            return Err("could not allocate the test graph".into());
        }
        let ctx = run.ctx;
        let w4 = sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_Q4_K, K, N);
        let w6 = sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_Q6_K, K, N);
        let x1 = sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_F32, K, 1);
        let xb = sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_F32, K, BATCH);
        let vec_out = sys::ggml_mul_mat(ctx, w4, x1);
        let batch_out = sys::ggml_mul_mat(ctx, w6, xb);
        let normed = sys::ggml_mul_mat(ctx, w4, sys::ggml_rms_norm(ctx, xb, 1e-6));
        let probs = sys::ggml_soft_max(ctx, sys::ggml_add(ctx, normed, batch_out));
        let graph = sys::ggml_new_graph(ctx);
        sys::ggml_build_forward_expand(graph, vec_out);
        sys::ggml_build_forward_expand(graph, probs);
        for i in 0..sys::ggml_graph_n_nodes(graph) {
            let node = sys::ggml_graph_node(graph, i);
            if !ggml::ggml_backend_dev_supports_op(dev, node) {
                let op = std::ffi::CStr::from_ptr(sys::ggml_op_desc(node)).to_string_lossy();
                return Err(format!("the device cannot run {op}"));
            }
        }
        run.backend = ggml::ggml_backend_dev_init(dev, ptr::null());
        if run.backend.is_null() {
            return Err("the device did not initialise".into());
        }
        run.buffer = ggml::ggml_backend_alloc_ctx_tensors(ctx, run.backend);
        if run.buffer.is_null() {
            return Err("could not allocate device memory for the test".into());
        }
        set(w4, &inputs.q4);
        set(w6, &inputs.q6);
        set(x1, bytes(&inputs.x1));
        set(xb, bytes(&inputs.xb));
        let status = ggml::ggml_backend_graph_compute(run.backend, graph);
        if status != sys::GGML_STATUS_SUCCESS {
            return Err(format!("the test graph failed with ggml status {status}"));
        }
        Ok([get(vec_out), get(batch_out), get(probs)])
    }
}

fn bytes(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern of it is readable.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// SAFETY: `t` is allocated and `data` is exactly `ggml_nbytes(t)` long.
unsafe fn set(t: *mut sys::ggml_tensor, data: &[u8]) {
    debug_assert_eq!(data.len(), sys::ggml_nbytes(t));
    ggml::ggml_backend_tensor_set(t, data.as_ptr().cast(), 0, data.len());
}

/// SAFETY: `t` is an allocated F32 tensor.
unsafe fn get(t: *mut sys::ggml_tensor) -> Vec<f32> {
    let n = sys::ggml_nbytes(t) / 4;
    let mut out = vec![0f32; n];
    ggml::ggml_backend_tensor_get(t, out.as_mut_ptr().cast(), 0, n * 4);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_agrees_with_itself() {
        crate::engine::model::backend().unwrap();
        let cpu = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
        let diff = compare_with_cpu(cpu).unwrap();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn the_test_outputs_are_meaningful() {
        crate::engine::model::backend().unwrap();
        let cpu = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
        let [vec_out, batch_out, probs] = run(cpu, &Inputs::new()).unwrap();
        assert_eq!((vec_out.len(), batch_out.len(), probs.len()), (64, 64 * 16, 64 * 16));
        assert!(vec_out.iter().any(|v| v.abs() > 0.01), "products are not all zero");
        let column: f32 = probs[..64].iter().sum();
        assert!((column - 1.0).abs() < 1e-4, "softmax columns sum to one: {column}");
    }
}
